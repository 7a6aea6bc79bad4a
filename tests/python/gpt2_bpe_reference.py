#!/usr/bin/env python3
"""Reference byte-level BPE for tests/tokenizer_test.cc, written from the published algorithm
(OpenAI's GPT-2 encoder.py: bytes_to_unicode, the split pattern, bpe() merging the lowest-ranked
pair first) with python3-regex, which runs the patterns' lookahead natively.

  gpt2_bpe_reference.py OUT_DIR CORPUS.jsonl [CORPUS.jsonl ...]

Learns MERGES (400) byte-level BPE merges on the first corpus (pair counts over its GPT-2 pieces; ties
broken by the larger pair) and writes three tokenizer directories of the same vocabulary:
  OUT_DIR/gpt2         vocab.json + merges.txt ("#version" line first), <|endoftext|> in the vocab
  OUT_DIR/gpt2-json    tokenizer.json: ByteLevel pre-tokenizer, merges as "a b" strings
  OUT_DIR/llama3-json  tokenizer.json: Split (the Llama 3 pattern) + ByteLevel, merges as [a, b]
                       pairs, added tokens <|begin_of_text|> / <|end_of_text|>, a TemplateProcessing
                       post-processor that starts sequences with <|begin_of_text|>
Then, for every corpus C (one {"text": ...} per line) and layout L in gpt2, llama3, writes
  OUT_DIR/ids-L-C.jsonl     the token ids of each text (a JSON array per line)
  OUT_DIR/pieces-L-C.jsonl  the pieces the split pattern cuts each text into (first corpus only)
and prints how many texts have a whitespace run that gives up its last character (\\s+(?!\\S)).
"""
import collections
import json
import os
import sys

import regex

MERGES = 400
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
                  r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
END_OF_TEXT = "<|endoftext|>"
BEGIN_OF_TEXT_3, END_OF_TEXT_3 = "<|begin_of_text|>", "<|end_of_text|>"


def bytes_to_unicode():
    """GPT-2's table: printable bytes stand for themselves, the others for 256 + n."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
                 list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


BYTE_ENCODER = bytes_to_unicode()


def as_symbols(piece):
    return "".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))


def learn_merges(texts, count):
    """The `count` most frequent adjacent pairs, merged one after another."""
    pattern = regex.compile(GPT2_PATTERN)
    frequency = collections.Counter()
    for text in texts:
        frequency.update(as_symbols(piece) for piece in pattern.findall(text))
    words = [[list(word), n] for word, n in frequency.items()]
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)  # pair -> indexes of words holding it
    for index, (symbols, n) in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += n
            where[pair].add(index)
    merges = []
    while len(merges) < count and pair_counts:
        best = max(pair_counts.items(), key=lambda item: (item[1], item[0]))[0]
        merges.append(best)
        for index in list(where[best]):
            symbols, n = words[index]
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] -= n
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[index][0] = merged
            for pair in zip(merged, merged[1:]):
                pair_counts[pair] += n
                where[pair].add(index)
        del where[best]
    return merges


class Encoder:
    """GPT-2's encoder.py with added tokens matched (leftmost, longest) before splitting."""

    def __init__(self, vocab, merges, pattern, added):
        self.vocab = vocab
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.pattern = regex.compile(pattern)
        self.added = added
        alternatives = sorted(added, key=len, reverse=True)
        self.added_pattern = regex.compile("(" + "|".join(map(regex.escape, alternatives)) + ")")
        self.cache = {}

    def bpe(self, symbols):
        if symbols in self.cache:
            return self.cache[symbols]
        word = list(symbols)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[symbols] = word
        return word

    def pieces(self, text):
        out = []
        for part in self.added_pattern.split(text):
            if part in self.added:
                out.append(part)
            elif part:
                out.extend(self.pattern.findall(part))
        return out

    def encode(self, text):
        ids = []
        for part in self.added_pattern.split(text):
            if part in self.added:
                ids.append(self.added[part])
            elif part:
                for piece in self.pattern.findall(part):
                    ids.extend(self.vocab[token] for token in self.bpe(as_symbols(piece)))
        return ids


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False)


def added_entry(content, token_id):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


def bpe_model(vocab, merges, merges_as_pairs):
    return {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
            "vocab": vocab,
            "merges": [list(m) if merges_as_pairs else " ".join(m) for m in merges]}


def main():
    out_dir, corpora = sys.argv[1], sys.argv[2:]
    texts = {}
    for path in corpora:
        with open(path, encoding="utf-8") as f:
            texts[path] = [json.loads(line)["text"] for line in f]
    merges = learn_merges(texts[corpora[0]], MERGES)
    vocab = {}
    for b in range(256):
        vocab[BYTE_ENCODER[b]] = len(vocab)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))

    gpt2_vocab = dict(vocab, **{END_OF_TEXT: len(vocab)})
    os.makedirs(os.path.join(out_dir, "gpt2"), exist_ok=True)
    write_json(os.path.join(out_dir, "gpt2", "vocab.json"), gpt2_vocab)
    with open(os.path.join(out_dir, "gpt2", "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    os.makedirs(os.path.join(out_dir, "gpt2-json"), exist_ok=True)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    write_json(os.path.join(out_dir, "gpt2-json", "tokenizer.json"), {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added_entry(END_OF_TEXT, gpt2_vocab[END_OF_TEXT])],
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": byte_level,
        "decoder": byte_level, "model": bpe_model(gpt2_vocab, merges, False)})

    llama3_added = {BEGIN_OF_TEXT_3: len(vocab), END_OF_TEXT_3: len(vocab) + 1}
    os.makedirs(os.path.join(out_dir, "llama3-json"), exist_ok=True)
    write_json(os.path.join(out_dir, "llama3-json", "tokenizer.json"), {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added_entry(t, i) for t, i in llama3_added.items()],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
             "invert": False},
            dict(byte_level, use_regex=False)]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": BEGIN_OF_TEXT_3, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {BEGIN_OF_TEXT_3: {
                "id": BEGIN_OF_TEXT_3, "ids": [llama3_added[BEGIN_OF_TEXT_3]],
                "tokens": [BEGIN_OF_TEXT_3]}}},
        "decoder": dict(byte_level, use_regex=False),
        "model": bpe_model(vocab, merges, True)})

    encoders = {"gpt2": Encoder(gpt2_vocab, merges, GPT2_PATTERN, {END_OF_TEXT: gpt2_vocab[END_OF_TEXT]}),
                "llama3": Encoder(vocab, merges, LLAMA3_PATTERN, llama3_added)}
    gives_up = regex.compile(r"\s\s+(?=\S)")
    for path in corpora:
        name = os.path.splitext(os.path.basename(path))[0]
        for layout, encoder in encoders.items():
            with open(os.path.join(out_dir, f"ids-{layout}-{name}.jsonl"), "w") as ids:
                for text in texts[path]:
                    ids.write(json.dumps(encoder.encode(text)) + "\n")
            if path != corpora[0]:
                continue
            with open(os.path.join(out_dir, f"pieces-{layout}-{name}.jsonl"), "w",
                      encoding="utf-8") as pieces:
                for text in texts[path]:
                    pieces.write(json.dumps(encoder.pieces(text), ensure_ascii=False) + "\n")
        print(f"{name}: {len(texts[path])} texts, "
              f"{sum(1 for t in texts[path] if gives_up.search(t))} with a whitespace run that "
              f"gives up its last character")
    print(f"{len(merges)} merges, vocabulary {len(gpt2_vocab)}")


if __name__ == "__main__":
    main()
