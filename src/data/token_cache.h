// A JSONL corpus tokenized once into flat, memory-mapped files (the layout of nanoGPT's
// train.bin), reused by everything that reads the corpus: training, factor fitting, index builds,
// LDS and ablations.
//
// An entry is a directory <root>/jsonl-<16 hex digits of the key's XXH3> holding
//   tokens.bin        every document's token ids back to back (uint16 little-endian while the
//                     vocabulary fits, else uint32), without end-of-document markers; ids of
//                     the options' tokenizer (the byte tokenizer's: the bytes), the prompt and
//                     the completion of a pair encoded separately
//   offsets.bin       uint64 start of each document in tokens, then the total (N + 1 values)
//   prompts.bin       uint32 per document: leading tokens that carry no loss (instruction data)
//   names.bin         each document's id bytes then its source bytes, back to back
//   name_offsets.bin  uint64 starts: id_0, source_0, id_1, ..., then the end (2N + 1 values)
//   manifest.json     format and version, the key (corpus content hash, file names, the JSONL
//                     field options, the tokenizer's name, version, vocabulary, markers and the
//                     fingerprint of its files), counts, and the size and XXH3 of every file
//                     above: a cache built with another tokenizer is never reused
// Beyond its tokens a document costs 28 bytes plus its id and source on disk; nothing per
// document is held in memory (the files are mapped and read by document index).
//
// Written in one streaming pass into a temporary directory next to the entry, then renamed into
// place (a reader sees a whole entry or none). Verified on every open: the manifest's key must
// equal the corpus's, every file's size must match and the offsets must end where the files do,
// and every file's XXH3 is recomputed by reading it once (buffered reads, not through the
// mapping, so it costs no resident memory; about 0.1 s per 100 MB here). A mismatched or damaged
// entry is rebuilt with a log line saying why, never used. tda removes only directories whose
// manifest says a token cache wrote them; anything else under an entry's name is an error
// naming it.
//
// Thread-compatible: one thread at a time per TokenCache.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "data/jsonl_corpus.h"
#include "data/tokenizer.h"

namespace tda {

struct TokenCacheOptions {
  std::string root;  // "" = DefaultTokenCacheRoot()
  // The tokenizer documents are encoded with; nullptr = the byte tokenizer.
  std::shared_ptr<const Tokenizer> tokenizer;
  // Its files' TokenizerFingerprint (data/tokenizer_files.h), part of the key; "" for the byte
  // tokenizer.
  std::string tokenizer_files;
  std::string corpus_hash;  // JsonlCorpusHash of the files when the caller has it; "" = hash
  // Told why an entry is (re)built; default: a line on stderr.
  std::function<void(const std::string&)> log;
};

// $TDA_CACHE_DIR, else $XDG_CACHE_HOME/tda, else $HOME/.cache/tda.
std::string DefaultTokenCacheRoot();

class TokenCache {
 public:
  static constexpr int kFormatVersion = 1;

  // The entry of `corpus` under options.root, built first (one streaming pass over the corpus)
  // when it is missing, damaged or keyed differently. Errors of the corpus name the file and
  // line as ReadJsonlDocuments does.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TokenCache>> Open(
      const JsonlOptions& corpus, const TokenCacheOptions& options = {});
  ~TokenCache();
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& corpus_hash() const { return corpus_hash_; }
  // True when this Open tokenized the corpus; false when it reused the entry.
  bool built() const { return built_; }

  int64_t documents() const { return documents_; }
  int64_t tokens() const { return tokens_; }
  int64_t document_tokens(int64_t doc) const;
  int64_t prompt_tokens(int64_t doc) const;
  // Copies the document_tokens(doc) token ids of `doc` into `out`.
  void CopyTokens(int64_t doc, int32_t* out) const;
  // The document's text: its tokens decoded (the byte tokenizer's: its bytes; SentencePiece's:
  // the normalized text).
  std::string Text(int64_t doc) const;
  // The decoded tokens [begin, end) of `doc` (clamped to the document).
  std::string DecodeRange(int64_t doc, int64_t begin, int64_t end) const;
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // Valid while this cache is open.
  std::string_view id(int64_t doc) const;
  std::string_view source(int64_t doc) const;

 private:
  struct Mapping;  // one mapped file
  TokenCache();
  [[nodiscard]] absl::Status Map(const std::string& dir);
  // Drops the mapped pages from this process's resident set every 32 MiB read (the page cache
  // keeps them), so that reading the whole corpus does not grow RSS with it.
  void CountRead(size_t bytes) const;

  std::string dir_;
  std::string corpus_hash_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  bool built_ = false;
  int64_t documents_ = 0;
  int64_t tokens_ = 0;
  int token_bytes_ = 2;
  std::unique_ptr<Mapping> token_map_, offset_map_, prompt_map_, name_map_, name_offset_map_;
  mutable size_t read_since_release_ = 0;
};

}  // namespace tda
