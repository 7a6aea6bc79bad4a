#!/usr/bin/env python3
"""Reference SentencePiece ids for tests/tokenizer_test.cc, from Debian's python3-sentencepiece.

  sentencepiece_reference.py MODEL CORPUS.jsonl OUT.jsonl

For every {"text": ...} line of CORPUS writes {"ids": [...], "decoded": "..."}: the ids of
sp.encode(text) (no BOS / EOS) and sp.decode of those ids.
"""
import json
import sys

import sentencepiece


def main():
    model, corpus, out = sys.argv[1:4]
    processor = sentencepiece.SentencePieceProcessor(model_file=model)
    with open(corpus, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as o:
        for line in f:
            ids = processor.encode(json.loads(line)["text"])
            o.write(json.dumps({"ids": ids, "decoded": processor.decode(ids)},
                               ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
