#!/bin/bash
# The README example: a Llama with a SentencePiece tokenizer trained on the fortunes, queried.
set -e
T=${TDA:-build/client/tda}; T=$(realpath $T)
D=${OUT:-/tmp/tokdemo}; rm -rf $D; mkdir -p $D; cd $D
export TDA_CACHE_DIR=$D/cache OMP_NUM_THREADS=1
$T data export fortunes --out fortunes.jsonl
python3 -c "
import json
with open('fortunes.jsonl') as f, open('lines.txt','w') as o:
    for l in f: o.write(json.loads(l)['text'].replace('\n',' ')+'\n')"
spm_train --input=lines.txt --model_prefix=spm --vocab_size=2000 --character_coverage=1.0 --input_sentence_size=20000 --minloglevel=2 >/dev/null 2>&1
/usr/bin/time -f "train %e s" $T train --model-kind llama --recipe tiny --tokenizer spm.model --data fortunes.jsonl --train-size 2000 --context 64 --out llama-spm
/usr/bin/time -f "index %e s" $T index build --model llama-spm --out llama-spm-index 2>&1 | tail -3
/usr/bin/time -f "query %e s" $T query --index llama-spm-index --prompt 'Q: What is a computer?' --completion ' A: A machine.' --top-k 3
/usr/bin/time -f "finetune %e s" $T train --init llama-spm --data fortunes.jsonl --train-size 500 --epochs 1 --out llama-tuned
