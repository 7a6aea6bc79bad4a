#include "data/bpe_tokenizer.h"

#include <re2/re2.h>

#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "data/tokenizer_files.h"

namespace tda {

using json = nlohmann::json;

namespace {

// Pieces whose ids are remembered; the cache is emptied when it grows past this.
constexpr size_t kCacheEntries = size_t{1} << 16;

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

absl::string_view AbslView(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

// The bytes a vocabulary token stands for; nullopt when a character is not a byte's stand-in.
std::optional<std::string> TokenBytes(std::string_view token) {
  std::string bytes;
  size_t pos = 0;
  while (pos < token.size()) {
    unsigned char byte;
    if (!UnicodeToByte(token, &pos, &byte)) return std::nullopt;
    bytes.push_back(static_cast<char>(byte));
  }
  return bytes;
}

absl::Status Refuse(const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", std::string(what), " is not supported by tda's byte-level BPE"));
}

}  // namespace

struct BpeTokenizer::Parts {
  struct Merge {
    std::string left, right;
    std::string where;  // "merges.txt line 3", for errors
  };
  std::string source;  // the files, for errors
  std::string name;
  std::vector<std::pair<std::string, int32_t>> vocabulary;
  std::vector<Merge> merges;
  std::vector<AddedToken> added;
  std::string pattern = kGpt2SplitPattern;
  bool add_prefix_space = false;
  SpecialTokens special_tokens;
};

BpeTokenizer::BpeTokenizer(std::string name, const SpecialTokens& special_tokens)
    : Tokenizer(std::move(name), kVersion, special_tokens) {}

BpeTokenizer::~BpeTokenizer() = default;

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Build(Parts parts) {
  auto bpe = std::unique_ptr<BpeTokenizer>(new BpeTokenizer(parts.name, parts.special_tokens));
  ASSIGN_OR_RETURN(bpe->splitter_, ByteLevelSplitter::Create(parts.pattern));
  bpe->add_prefix_space_ = parts.add_prefix_space;
  auto place = [&](const std::string& token, int32_t id, bool added) -> absl::Status {
    if (id < 0)
      return absl::InvalidArgumentError(
          absl::StrCat(parts.source, ": token '", token, "' has the negative id ", id));
    if (static_cast<size_t>(id) >= bpe->tokens_.size()) {
      bpe->tokens_.resize(static_cast<size_t>(id) + 1);
      bpe->has_token_.resize(static_cast<size_t>(id) + 1);
    }
    auto [it, inserted] = bpe->ids_.emplace(token, id);
    if (!inserted && it->second != id) {
      return absl::InvalidArgumentError(absl::StrCat(parts.source, ": token '", token,
                                                     "' has two ids, ", it->second, " and ", id));
    }
    std::optional<std::string> bytes =
        added ? std::optional<std::string>(token) : TokenBytes(token);
    bpe->tokens_[static_cast<size_t>(id)] = bytes.value_or(token);
    bpe->has_token_[static_cast<size_t>(id)] = true;
    return absl::OkStatus();
  };
  for (const auto& [token, id] : parts.vocabulary) RETURN_IF_ERROR(place(token, id, false));
  std::vector<std::string> added_patterns;
  for (const AddedToken& token : parts.added) {
    RETURN_IF_ERROR(place(token.content, token.id, true));
    added_patterns.push_back(RE2::QuoteMeta(token.content));
  }
  for (int b = 0; b < 256; ++b) {
    const std::string& character = ByteToUnicode(static_cast<unsigned char>(b));
    auto it = bpe->ids_.find(character);
    if (it == bpe->ids_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(parts.source, ": the vocabulary has no token for byte ", b, " ('", character,
                       "'), so it is not a byte-level BPE vocabulary"));
    }
    bpe->byte_ids_[static_cast<size_t>(b)] = it->second;
  }
  for (size_t rank = 0; rank < parts.merges.size(); ++rank) {
    const Parts::Merge& merge = parts.merges[rank];
    const auto left = bpe->ids_.find(merge.left);
    const auto right = bpe->ids_.find(merge.right);
    const auto merged = bpe->ids_.find(merge.left + merge.right);
    for (const auto& [it, token] : {std::pair(left, merge.left), std::pair(right, merge.right),
                                    std::pair(merged, merge.left + merge.right)}) {
      if (it == bpe->ids_.end()) {
        return absl::InvalidArgumentError(absl::StrCat(merge.where, ": merge '", merge.left, " ",
                                                       merge.right, "': '", token,
                                                       "' is not in the vocabulary"));
      }
    }
    // A pair listed twice keeps its last rank, as GPT-2's dict and Hugging Face's map do.
    bpe->merges_.insert_or_assign(PairKey(left->second, right->second),
                                  std::pair(static_cast<int32_t>(rank), merged->second));
  }
  if (!added_patterns.empty()) {
    RE2::Options options;
    options.set_longest_match(true);  // leftmost-longest, as Hugging Face matches added tokens
    options.set_log_errors(false);
    bpe->added_matcher_ = std::make_unique<re2::RE2>(
        absl::StrCat("(", absl::StrJoin(added_patterns, "|"), ")"), options);
    if (!bpe->added_matcher_->ok()) {
      return absl::InternalError(absl::StrCat(
          parts.source, ": the added tokens do not compile: ", bpe->added_matcher_->error()));
    }
  }
  return bpe;
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJson(
    const std::string& path) {
  std::string bytes;
  ASSIGN_OR_RETURN(const json file, ReadJsonFile(path, &bytes));
  Parts parts;
  parts.source = path;
  parts.name = absl::StrCat("bpe-", ChecksumHex(Xxh3(bytes)));
  try {
    if (!file.is_object() || !file.contains("model") || !file.at("model").is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": has no \"model\" object"));
    }
    const json& model = file.at("model");
    const std::string type = model.value("type", "BPE");
    if (type != "BPE") return Refuse(path, absl::StrCat("model.type '", type, "'"));
    if (model.value("byte_fallback", false)) return Refuse(path, "model.byte_fallback");
    if (model.contains("dropout") && !model.at("dropout").is_null()) {
      return Refuse(path, "model.dropout");
    }
    for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(affix) && !model.at(affix).is_null() && model.at(affix) != "") {
        return Refuse(path, absl::StrCat("model.", affix));
      }
    }
    if (file.contains("normalizer") && !file.at("normalizer").is_null()) {
      return Refuse(
          path, absl::StrCat("the normalizer '", file.at("normalizer").value("type", "?"), "'"));
    }
    // pre_tokenizer: ByteLevel (the GPT-2 pattern), or Sequence [Split, ByteLevel without regex].
    const json pre = file.value("pre_tokenizer", json());
    auto byte_level = [&](const json& step, bool regex_allowed) -> absl::Status {
      if (step.value("type", "") != "ByteLevel") {
        return Refuse(path, absl::StrCat("the pre-tokenizer '", step.value("type", "?"), "'"));
      }
      if (step.value("use_regex", true) && !regex_allowed) {
        return Refuse(path, "a ByteLevel pre-tokenizer with its regex after a Split");
      }
      parts.add_prefix_space = step.value("add_prefix_space", false);
      return absl::OkStatus();
    };
    if (pre.is_object() && pre.value("type", "") == "Sequence") {
      const json steps = pre.value("pretokenizers", json::array());
      if (steps.size() != 2 || steps[0].value("type", "") != "Split") {
        return Refuse(path, absl::StrCat("the pre-tokenizer sequence ", steps.dump()));
      }
      const json& split = steps[0];
      if (split.value("behavior", "") != "Isolated" || split.value("invert", false)) {
        return Refuse(path, absl::StrCat("a Split with behavior '", split.value("behavior", "?"),
                                         "'", split.value("invert", false) ? " inverted" : ""));
      }
      const json pattern = split.value("pattern", json::object());
      if (!pattern.contains("Regex") || !pattern.at("Regex").is_string()) {
        return Refuse(path, absl::StrCat("the Split pattern ", pattern.dump()));
      }
      parts.pattern = pattern.at("Regex").get<std::string>();
      RETURN_IF_ERROR(byte_level(steps[1], /*regex_allowed=*/false));
      if (steps[1].value("use_regex", true))
        return Refuse(path, "ByteLevel use_regex after a Split");
    } else if (pre.is_object()) {
      RETURN_IF_ERROR(byte_level(pre, /*regex_allowed=*/true));
      if (!pre.value("use_regex", true))
        return Refuse(path, "a ByteLevel pre-tokenizer without its regex");
    } else {
      return Refuse(path, "a tokenizer without a ByteLevel pre-tokenizer");
    }
    const json& vocabulary = model.at("vocab");
    if (!vocabulary.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": model.vocab is not an object"));
    }
    for (const auto& [token, id] : vocabulary.items()) {
      parts.vocabulary.emplace_back(token, id.get<int32_t>());
    }
    const json& merges = model.at("merges");
    for (size_t i = 0; i < merges.size(); ++i) {
      const json& merge = merges[i];
      const std::string where = absl::StrCat(path, ": model.merges[", i, "]");
      if (merge.is_array() && merge.size() == 2) {
        parts.merges.push_back({merge[0].get<std::string>(), merge[1].get<std::string>(), where});
        continue;
      }
      const std::vector<std::string> halves = merge.is_string()
                                                  ? absl::StrSplit(merge.get<std::string>(), ' ')
                                                  : std::vector<std::string>();
      if (halves.size() != 2) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", merge.dump(), " is not \"a b\" or [\"a\", \"b\"]"));
      }
      parts.merges.push_back({halves[0], halves[1], where});
    }
    for (const json& added : file.value("added_tokens", json::array())) {
      const std::string content = added.at("content").get<std::string>();
      for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
        if (added.value(flag, false)) {
          return Refuse(path, absl::StrCat("the added token '", content, "' with ", flag));
        }
      }
      parts.added.push_back({content, added.at("id").get<int32_t>()});
    }
    // TemplateProcessing that starts a sequence with a special token: that token is the BOS.
    const json post = file.value("post_processor", json());
    if (post.is_object() && post.value("type", "") == "TemplateProcessing") {
      const json single = post.value("single", json::array());
      if (!single.empty() && single[0].contains("SpecialToken")) {
        const std::string bos = single[0].at("SpecialToken").at("id").get<std::string>();
        const json ids = post.at("special_tokens").at(bos).at("ids");
        parts.special_tokens.bos_id = ids.at(0).get<int32_t>();
        parts.special_tokens.add_bos = true;
      }
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a Hugging Face tokenizer.json (", e.what(), ")"));
  }
  return Build(std::move(parts));
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromVocabAndMerges(
    const std::string& vocab_path, const std::string& merges_path,
    const std::vector<AddedToken>& added, const std::vector<std::string>& special) {
  std::string vocab_bytes, merges_text;
  ASSIGN_OR_RETURN(const json vocabulary, ReadJsonFile(vocab_path, &vocab_bytes));
  RETURN_IF_ERROR(ReadFile(merges_path, &merges_text));
  Parts parts;
  parts.source = absl::StrCat(vocab_path, " + ", merges_path);
  std::string added_key;
  for (const AddedToken& token : added)
    absl::StrAppend(&added_key, token.id, ":", token.content, "\n");
  for (const std::string& content : special) absl::StrAppend(&added_key, content, "\n");
  parts.name = absl::StrCat(
      "bpe-", ChecksumHex(Xxh3(absl::StrCat(vocab_bytes, "\n", merges_text, "\n", added_key))));
  if (!vocabulary.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(vocab_path, ": not a JSON object of token ids"));
  }
  for (const auto& [token, id] : vocabulary.items()) {
    if (!id.is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab_path, ": the id of '", token, "' is ", id.dump(), ", not an integer"));
    }
    parts.vocabulary.emplace_back(token, id.get<int32_t>());
  }
  const std::vector<absl::string_view> lines = absl::StrSplit(merges_text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (i == 0 && line.rfind("#version", 0) == 0)) continue;
    const std::vector<std::string> halves = absl::StrSplit(line, ' ');
    const std::string where = absl::StrCat(merges_path, " line ", i + 1);
    if (halves.size() != 2 || halves[0].empty() || halves[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": '", std::string(line), "' is not \"a b\""));
    }
    parts.merges.push_back({halves[0], halves[1], where});
  }
  parts.added = added;
  for (const std::string& content : special) {
    if (!vocabulary.contains(content)) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab_path, ": has no special token '", content, "'"));
    }
    parts.added.push_back({content, vocabulary.at(content).get<int32_t>()});
  }
  return Build(std::move(parts));
}

std::optional<int32_t> BpeTokenizer::TokenId(std::string_view token) const {
  const auto it = ids_.find(AbslView(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::vector<int32_t>> BpeTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  // One stretch of text between added tokens, pre-tokenized on its own.
  auto encode_stretch = [&](std::string_view stretch) {
    if (stretch.empty()) return;
    std::string prefixed;
    if (add_prefix_space_ && stretch.front() != ' ') {
      prefixed = " " + std::string(stretch);
      stretch = prefixed;
    }
    for (std::string_view piece : splitter_->Split(stretch)) EncodePiece(piece, &ids);
  };
  re2::StringPiece rest(text.data(), text.size());
  re2::StringPiece match;
  while (added_matcher_ != nullptr && RE2::PartialMatch(rest, *added_matcher_, &match)) {
    encode_stretch(std::string_view(rest.data(), static_cast<size_t>(match.data() - rest.data())));
    ids.push_back(ids_.at(absl::string_view(match.data(), match.size())));
    rest.remove_prefix(static_cast<size_t>(match.data() - rest.data()) + match.size());
  }
  encode_stretch(std::string_view(rest.data(), rest.size()));
  return ids;
}

void BpeTokenizer::EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const {
  {
    absl::MutexLock lock(&cache_mutex_);
    const auto it = cache_.find(AbslView(piece));
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> merged = MergePiece(piece);
  ids->insert(ids->end(), merged.begin(), merged.end());
  absl::MutexLock lock(&cache_mutex_);
  if (cache_.size() >= kCacheEntries) cache_.clear();
  cache_.emplace(std::string(piece), std::move(merged));
}

std::vector<int32_t> BpeTokenizer::MergePiece(std::string_view piece) const {
  std::vector<int32_t> word(piece.size());
  for (size_t i = 0; i < piece.size(); ++i)
    word[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
  while (word.size() > 1) {
    int32_t best_rank = INT32_MAX, best_left = 0, best_right = 0, best_merged = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const auto it = merges_.find(PairKey(word[i], word[i + 1]));
      if (it != merges_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        best_left = word[i];
        best_right = word[i + 1];
        best_merged = it->second.second;
      }
    }
    if (best_rank == INT32_MAX) break;
    size_t out = 0;
    for (size_t i = 0; i < word.size(); ++i) {
      if (i + 1 < word.size() && word[i] == best_left && word[i + 1] == best_right) {
        word[out++] = best_merged;
        ++i;
      } else {
        word[out++] = word[i];
      }
    }
    word.resize(out);
  }
  return word;
}

absl::StatusOr<std::string> BpeTokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string text;
  for (const int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tokens_.size() ||
        !has_token_[static_cast<size_t>(id)]) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is not in the vocabulary of ", name()));
    }
    text += tokens_[static_cast<size_t>(id)];
  }
  return text;
}

}  // namespace tda
