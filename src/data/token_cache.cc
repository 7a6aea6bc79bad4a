#include "data/token_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "data/byte_tokenizer.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr char kFormat[] = "tda-token-cache";
constexpr char kManifest[] = "manifest.json";
constexpr char kTokens[] = "tokens.bin";
constexpr char kOffsets[] = "offsets.bin";
constexpr char kPrompts[] = "prompts.bin";
constexpr char kNames[] = "names.bin";
constexpr char kNameOffsets[] = "name_offsets.bin";
constexpr const char* kDataFiles[] = {kTokens, kOffsets, kPrompts, kNames, kNameOffsets};
// Mapped pages are dropped from the resident set after this many bytes were read through them.
constexpr size_t kReleaseEvery = size_t{32} << 20;
// Bytes buffered per file while writing.
constexpr size_t kWriteBuffer = size_t{1} << 20;

std::string Join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

// What makes two caches of a corpus differ: everything that changes the documents or tokens.
json KeyOf(const JsonlOptions& corpus, const std::string& corpus_hash, const Tokenizer& tokenizer,
           const std::string& tokenizer_files) {
  json files = json::array();
  // Ids and sources default to the file names, so they are part of the content.
  for (const std::string& path : corpus.paths) {
    files.push_back(std::filesystem::path(path).filename().string());
  }
  return json{{"corpus_hash", corpus_hash},
              {"files", files},
              {"text_field", corpus.text_field},
              {"prompt_field", corpus.prompt_field},
              {"completion_field", corpus.completion_field},
              {"id_field", corpus.id_field},
              {"source_field", corpus.source_field},
              {"source_from_file", corpus.source_from_file},
              {"skip_bad_lines", corpus.skip_bad_lines},
              {"tokenizer", tokenizer.name()},
              {"tokenizer_version", tokenizer.version()},
              {"tokenizer_files", tokenizer_files},
              {"bos", tokenizer.bos_id().value_or(-1)},
              {"eos", tokenizer.eos_id().value_or(-1)},
              {"vocabulary", tokenizer.vocabulary_size()}};
}

// One file of an entry being written: buffered, hashed as it goes, committed atomically.
class CacheFileWriter {
 public:
  [[nodiscard]] absl::Status Open(const std::string& dir, const std::string& name) {
    name_ = name;
    buffer_.reserve(kWriteBuffer);
    return file_.Open(Join(dir, name));
  }
  [[nodiscard]] absl::Status Append(const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    buffer_.insert(buffer_.end(), bytes, bytes + size);
    return buffer_.size() >= kWriteBuffer ? Flush() : absl::OkStatus();
  }
  template <typename T>
  [[nodiscard]] absl::Status AppendValue(T value) {
    return Append(&value, sizeof(value));
  }
  // Commits the file and describes it for the manifest.
  [[nodiscard]] absl::Status Commit(json* files) {
    RETURN_IF_ERROR(Flush());
    RETURN_IF_ERROR(file_.Commit());
    (*files)[name_] = json{{"bytes", file_.bytes_written()}, {"xxh3", ChecksumHex(hash_.Digest())}};
    return absl::OkStatus();
  }

 private:
  absl::Status Flush() {
    hash_.Update(buffer_.data(), buffer_.size());
    RETURN_IF_ERROR(file_.Append(buffer_.data(), buffer_.size()));
    buffer_.clear();
    return absl::OkStatus();
  }
  std::string name_;
  AtomicFileWriter file_;
  Xxh3Stream hash_;
  std::vector<char> buffer_;
};

// Tokenizes `corpus` into directory `dir` (created here) in one pass.
absl::Status WriteEntry(const JsonlOptions& corpus, const json& key, const Tokenizer& tokenizer,
                        const std::string& dir) {
  RETURN_IF_ERROR(MakeDirectories(dir));
  CacheFileWriter tokens, offsets, prompts, names, name_offsets;
  RETURN_IF_ERROR(tokens.Open(dir, kTokens));
  RETURN_IF_ERROR(offsets.Open(dir, kOffsets));
  RETURN_IF_ERROR(prompts.Open(dir, kPrompts));
  RETURN_IF_ERROR(names.Open(dir, kNames));
  RETURN_IF_ERROR(name_offsets.Open(dir, kNameOffsets));
  const bool narrow = tokenizer.vocabulary_size() <= 65536;
  uint64_t token_count = 0, name_bytes = 0;
  int64_t documents = 0;
  std::vector<uint16_t> narrow_tokens;
  std::vector<uint32_t> wide_tokens;
  RETURN_IF_ERROR(ReadJsonlDocuments(corpus, [&](TextDocument&& doc) -> absl::Status {
    const std::string_view text = doc.text;
    const size_t prompt_bytes = static_cast<size_t>(doc.prompt_bytes);
    // A pair's prompt and completion are encoded separately, as a query's are.
    ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                     tokenizer.Encode(prompt_bytes > 0 ? text.substr(0, prompt_bytes) : text));
    const size_t prompt_tokens = prompt_bytes > 0 ? ids.size() : 0;
    if (prompt_bytes > 0) {
      ASSIGN_OR_RETURN(const std::vector<int32_t> completion,
                       tokenizer.Encode(text.substr(prompt_bytes)));
      ids.insert(ids.end(), completion.begin(), completion.end());
    }
    const size_t n = ids.size();
    if (narrow) {
      narrow_tokens.assign(ids.begin(), ids.end());
      RETURN_IF_ERROR(tokens.Append(narrow_tokens.data(), n * sizeof(uint16_t)));
    } else {
      wide_tokens.assign(ids.begin(), ids.end());
      RETURN_IF_ERROR(tokens.Append(wide_tokens.data(), n * sizeof(uint32_t)));
    }
    RETURN_IF_ERROR(offsets.AppendValue<uint64_t>(token_count));
    token_count += n;
    RETURN_IF_ERROR(prompts.AppendValue<uint32_t>(static_cast<uint32_t>(prompt_tokens)));
    RETURN_IF_ERROR(name_offsets.AppendValue<uint64_t>(name_bytes));
    RETURN_IF_ERROR(names.Append(doc.id.data(), doc.id.size()));
    name_bytes += doc.id.size();
    RETURN_IF_ERROR(name_offsets.AppendValue<uint64_t>(name_bytes));
    RETURN_IF_ERROR(names.Append(doc.source.data(), doc.source.size()));
    name_bytes += doc.source.size();
    ++documents;
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(offsets.AppendValue<uint64_t>(token_count));
  RETURN_IF_ERROR(name_offsets.AppendValue<uint64_t>(name_bytes));
  json files = json::object();
  RETURN_IF_ERROR(tokens.Commit(&files));
  RETURN_IF_ERROR(offsets.Commit(&files));
  RETURN_IF_ERROR(prompts.Commit(&files));
  RETURN_IF_ERROR(names.Commit(&files));
  RETURN_IF_ERROR(name_offsets.Commit(&files));
  const json manifest{{"format", kFormat},
                      {"version", TokenCache::kFormatVersion},
                      {"key", key},
                      {"documents", documents},
                      {"tokens", token_count},
                      {"token_bytes", narrow ? 2 : 4},
                      {"files", files}};
  RETURN_IF_ERROR(WriteFileAtomically(Join(dir, kManifest), manifest.dump(2) + "\n"));
  return SyncDirectory(dir);
}

// The manifest of an entry; kNotFound when there is none; kFailedPrecondition when the directory
// holds something a token cache did not write (it must then be left alone).
absl::StatusOr<json> ReadOwnManifest(const std::string& dir) {
  std::string text;
  const absl::Status read = ReadFile(Join(dir, kManifest), &text);
  if (absl::IsNotFound(read) && !std::filesystem::exists(dir)) return read;
  json manifest = read.ok() ? json::parse(text, nullptr, /*allow_exceptions=*/false)
                            : json(json::value_t::discarded);
  if (manifest.is_discarded() || !manifest.is_object() || manifest.value("format", "") != kFormat) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a tda token cache (no readable ", kManifest,
                     " saying so); tda does not remove what it did not write: move it away or "
                     "choose another --cache-dir"));
  }
  return manifest;
}

// Why the entry in `dir` cannot be used for `key` ("" when it can). Throws json::exception on a
// manifest whose fields have the wrong types.
std::string CheckEntryFields(const json& manifest, const json& key, const std::string& dir) {
  if (manifest.value("version", 0) != TokenCache::kFormatVersion) {
    return absl::StrCat("format version ", manifest.value("version", 0), ", expected ",
                        TokenCache::kFormatVersion);
  }
  if (manifest.value("key", json()) != key) return "its key differs from the corpus's";
  for (const char* count : {"documents", "tokens", "token_bytes"}) {
    if (!manifest.contains(count) || !manifest.at(count).is_number_unsigned()) {
      return absl::StrCat("the manifest has no count '", count, "'");
    }
  }
  if (const int bytes = manifest.at("token_bytes"); bytes != 2 && bytes != 4) {
    return absl::StrCat("the manifest says ", bytes, " bytes a token (2 or 4)");
  }
  const json files = manifest.value("files", json::object());
  for (const char* name : kDataFiles) {
    if (!files.contains(name)) return absl::StrCat("the manifest lists no ", name);
    const std::string path = Join(dir, name);
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) return absl::StrCat(name, " is missing");
    if (size != files[name].value("bytes", uint64_t{0})) {
      return absl::StrCat(name, " has ", size, " bytes, the manifest says ",
                          files[name].value("bytes", uint64_t{0}));
    }
    absl::StatusOr<uint64_t> hash = FileXxh3(path);
    if (!hash.ok()) return std::string(hash.status().message());
    if (ChecksumHex(*hash) != files[name].value("xxh3", "")) {
      return absl::StrCat(name, " is damaged (XXH3 ", ChecksumHex(*hash), ", the manifest says ",
                          files[name].value("xxh3", ""), ")");
    }
  }
  return "";
}

std::string CheckEntry(const json& manifest, const json& key, const std::string& dir) {
  try {
    return CheckEntryFields(manifest, key, dir);
  } catch (const json::exception& e) {
    return absl::StrCat("its manifest is malformed (", e.what(), ")");
  }
}

}  // namespace

std::string DefaultTokenCacheRoot() {
  if (const char* dir = std::getenv("TDA_CACHE_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/tda");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr && *home != '\0' ? home : ".", "/.cache/tda");
}

struct TokenCache::Mapping {
  void* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data != nullptr) munmap(data, size);
  }
  const unsigned char* bytes() const { return static_cast<const unsigned char*>(data); }
  template <typename T>
  T At(int64_t i) const {
    T value;
    std::memcpy(&value, bytes() + static_cast<size_t>(i) * sizeof(T), sizeof(T));
    return value;
  }
  void Release() const {
    if (data != nullptr) madvise(data, size, MADV_DONTNEED);
  }
};

TokenCache::TokenCache() = default;
TokenCache::~TokenCache() = default;

namespace {

absl::Status MapInto(const std::string& path, void** data, size_t* size) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return absl::InternalError(absl::StrCat(path, ": cannot stat: ", why));
  }
  *size = static_cast<size_t>(st.st_size);
  if (*size > 0) {
    void* map = mmap(nullptr, *size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      const std::string why = std::strerror(errno);
      close(fd);
      return absl::InternalError(absl::StrCat(path, ": cannot mmap: ", why));
    }
    *data = map;
  }
  close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::Status TokenCache::Map(const std::string& dir) {
  const std::pair<const char*, std::unique_ptr<Mapping>*> files[] = {
      {kTokens, &token_map_},
      {kOffsets, &offset_map_},
      {kPrompts, &prompt_map_},
      {kNames, &name_map_},
      {kNameOffsets, &name_offset_map_}};
  for (const auto& [name, mapping] : files) {
    *mapping = std::make_unique<Mapping>();
    RETURN_IF_ERROR(MapInto(Join(dir, name), &(*mapping)->data, &(*mapping)->size));
  }
  // The checksums matched the manifest; these catch a manifest that disagrees with itself.
  const auto n = static_cast<size_t>(documents_);
  const bool consistent =
      offset_map_->size == (n + 1) * 8 && prompt_map_->size == n * 4 &&
      name_offset_map_->size == (2 * n + 1) * 8 &&
      token_map_->size == static_cast<size_t>(tokens_) * static_cast<size_t>(token_bytes_) &&
      offset_map_->At<uint64_t>(documents_) == static_cast<uint64_t>(tokens_) &&
      name_offset_map_->At<uint64_t>(2 * documents_) == name_map_->size;
  if (!consistent) {
    return absl::DataLossError(absl::StrCat("the files of ", dir, " disagree with its manifest"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TokenCache>> TokenCache::Open(const JsonlOptions& corpus,
                                                             const TokenCacheOptions& options) {
  const std::string root = options.root.empty() ? DefaultTokenCacheRoot() : options.root;
  std::function<void(const std::string&)> log = options.log;
  if (!log) log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  std::string corpus_hash = options.corpus_hash;
  if (corpus_hash.empty()) {
    ASSIGN_OR_RETURN(corpus_hash, JsonlCorpusHash(corpus.paths));
  }
  std::shared_ptr<const Tokenizer> tokenizer = options.tokenizer;
  if (tokenizer == nullptr) tokenizer = std::make_shared<ByteTokenizer>();
  const json key = KeyOf(corpus, corpus_hash, *tokenizer, options.tokenizer_files);
  const std::string name = absl::StrCat("jsonl-", ChecksumHex(Xxh3(key.dump())));
  const std::string dir = Join(root, name);
  auto cache = std::unique_ptr<TokenCache>(new TokenCache());
  cache->dir_ = dir;
  cache->corpus_hash_ = corpus_hash;
  cache->tokenizer_ = tokenizer;

  // Opens the entry in `dir`: why it cannot be used, or "" when it is open.
  auto try_open = [&](const json& manifest) -> absl::StatusOr<std::string> {
    std::string why = CheckEntry(manifest, key, dir);
    if (!why.empty()) return why;
    cache->documents_ = manifest.value("documents", int64_t{0});
    cache->tokens_ = manifest.value("tokens", int64_t{0});
    cache->token_bytes_ = manifest.value("token_bytes", 2);
    const absl::Status mapped = cache->Map(dir);
    if (absl::IsDataLoss(mapped)) return std::string(mapped.message());
    RETURN_IF_ERROR(mapped);
    return std::string();
  };

  absl::StatusOr<json> existing = ReadOwnManifest(dir);
  const bool present = existing.ok();
  if (present) {
    ASSIGN_OR_RETURN(std::string why, try_open(*existing));
    if (why.empty()) return cache;
    log(absl::StrCat("token cache ", dir, ": ", why, "; rebuilding it"));
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }

  // Build next to the entry, then rename into place.
  RETURN_IF_ERROR(MakeDirectories(root));
  const std::string temp = Join(root, absl::StrCat(".tmp-", name, "-", getpid()));
  std::error_code ec;
  std::filesystem::remove_all(temp, ec);  // a temporary of this process id: ours
  if (absl::Status written = WriteEntry(corpus, key, *tokenizer, temp); !written.ok()) {
    std::filesystem::remove_all(temp, ec);
    return written;
  }
  if (present) {
    // The damaged entry is ours (its manifest says so): move it aside, then remove it.
    const std::string old = Join(root, absl::StrCat(".old-", name, "-", getpid()));
    std::filesystem::rename(dir, old, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot move the damaged token cache ", dir, " aside: ", ec.message()));
    }
    std::filesystem::remove_all(old, ec);
  }
  std::filesystem::rename(temp, dir, ec);
  if (ec) {
    // Another process published the same entry first: use it.
    std::filesystem::remove_all(temp, ec);
  } else {
    RETURN_IF_ERROR(SyncDirectory(root));
    cache->built_ = true;
  }
  ASSIGN_OR_RETURN(json manifest, ReadOwnManifest(dir));
  ASSIGN_OR_RETURN(std::string why, try_open(manifest));
  if (!why.empty()) {
    return absl::DataLossError(
        absl::StrCat("token cache ", dir, " is unusable right after it was written: ", why));
  }
  return cache;
}

int64_t TokenCache::document_tokens(int64_t doc) const {
  return static_cast<int64_t>(offset_map_->At<uint64_t>(doc + 1) - offset_map_->At<uint64_t>(doc));
}

int64_t TokenCache::prompt_tokens(int64_t doc) const { return prompt_map_->At<uint32_t>(doc); }

void TokenCache::CopyTokens(int64_t doc, int32_t* out) const {
  const uint64_t begin = offset_map_->At<uint64_t>(doc);
  const int64_t n = document_tokens(doc);
  const unsigned char* bytes = token_map_->bytes() + begin * static_cast<uint64_t>(token_bytes_);
  for (int64_t t = 0; t < n; ++t) {
    if (token_bytes_ == 2) {
      uint16_t v;
      std::memcpy(&v, bytes + 2 * t, 2);
      out[t] = v;
    } else {
      uint32_t v;
      std::memcpy(&v, bytes + 4 * t, 4);
      out[t] = static_cast<int32_t>(v);
    }
  }
  CountRead(static_cast<size_t>(n * token_bytes_));
}

std::string TokenCache::Text(int64_t doc) const {
  return DecodeRange(doc, 0, document_tokens(doc));
}

std::string TokenCache::DecodeRange(int64_t doc, int64_t begin, int64_t end) const {
  const int64_t n = document_tokens(doc);
  begin = std::clamp<int64_t>(begin, 0, n);
  end = std::clamp<int64_t>(end, begin, n);
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  CopyTokens(doc, tokens.data());
  // The ids were encoded by this tokenizer (and the files verified), so they decode.
  absl::StatusOr<std::string> text = tokenizer_->Decode(
      absl::MakeConstSpan(tokens.data() + begin, static_cast<size_t>(end - begin)));
  return text.ok() ? *std::move(text) : std::string();
}

std::string_view TokenCache::id(int64_t doc) const {
  const uint64_t begin = name_offset_map_->At<uint64_t>(2 * doc);
  const uint64_t end = name_offset_map_->At<uint64_t>(2 * doc + 1);
  CountRead(end - begin);
  return std::string_view(reinterpret_cast<const char*>(name_map_->bytes()) + begin, end - begin);
}

std::string_view TokenCache::source(int64_t doc) const {
  const uint64_t begin = name_offset_map_->At<uint64_t>(2 * doc + 1);
  const uint64_t end = name_offset_map_->At<uint64_t>(2 * doc + 2);
  CountRead(end - begin);
  return std::string_view(reinterpret_cast<const char*>(name_map_->bytes()) + begin, end - begin);
}

void TokenCache::CountRead(size_t bytes) const {
  read_since_release_ += bytes + 16;  // and the offsets read with them
  if (read_since_release_ < kReleaseEvery) return;
  read_since_release_ = 0;
  for (const auto* mapping :
       {&token_map_, &offset_map_, &prompt_map_, &name_map_, &name_offset_map_}) {
    (*mapping)->Release();
  }
}

}  // namespace tda
