#include "data/tokenizer.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/bpe_tokenizer.h"
#include "data/sentencepiece_tokenizer.h"
#include "data/tokenizer_files.h"

namespace tda {
namespace {

using json = nlohmann::json;

// GPT-2's bos, eos and unk token when its files name none (Hugging Face's GPT2Tokenizer default).
constexpr char kGpt2EndOfText[] = "<|endoftext|>";

// The JSON files beside a tokenizer that configure its special tokens; {} when absent.
struct TokenizerConfigs {
  std::string dir;  // where the files were found (a directory, or the one file)
  std::map<std::string, std::string> paths;  // TokenizerFiles::paths
  json tokenizer_config;    // tokenizer_config.json
  json special_tokens_map;  // special_tokens_map.json
  json generation_config;   // generation_config.json

  // The file's path; "" (which does not exist) when there is none.
  std::string Path(const char* name) const {
    const auto it = paths.find(name);
    return it == paths.end() ? std::string() : it->second;
  }
};

absl::StatusOr<json> ReadOptionalObject(const std::string& path) {
  if (!std::filesystem::exists(path)) return json::object();
  ASSIGN_OR_RETURN(json value, ReadJsonFile(path));
  if (!value.is_object())
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  return value;
}

absl::StatusOr<TokenizerConfigs> ReadConfigs(const TokenizerFiles& files) {
  TokenizerConfigs configs;
  configs.dir = files.origin;
  configs.paths = files.paths;
  ASSIGN_OR_RETURN(configs.tokenizer_config,
                   ReadOptionalObject(configs.Path("tokenizer_config.json")));
  ASSIGN_OR_RETURN(configs.special_tokens_map,
                   ReadOptionalObject(configs.Path("special_tokens_map.json")));
  ASSIGN_OR_RETURN(configs.generation_config,
                   ReadOptionalObject(configs.Path("generation_config.json")));
  return configs;
}

// The tokens of tokenizer_config.json's added_tokens_decoder ({"<id>": {"content": ...}}).
absl::StatusOr<std::vector<AddedToken>> ConfiguredAddedTokens(const TokenizerConfigs& configs) {
  std::vector<AddedToken> added;
  if (!configs.tokenizer_config.contains("added_tokens_decoder")) return added;
  const std::string path = configs.Path("tokenizer_config.json");
  for (const auto& [id_text, token] : configs.tokenizer_config.at("added_tokens_decoder").items()) {
    const std::optional<std::string> content = TokenContent(token);
    int32_t id = -1;
    if (!absl::SimpleAtoi(id_text, &id) || id < 0 || !content.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": added_tokens_decoder entry '",
                                                     id_text,
                                                     "' is not {\"<id>\": {\"content\": ...}}"));
    }
    added.push_back({*content, id});
  }
  return added;
}

// The configured contents of `field` ("bos_token", ...): tokenizer_config.json over
// special_tokens_map.json. nullopt when neither names it; "" when the config sets it to null.
std::optional<std::string> ConfiguredContent(const TokenizerConfigs& configs, const char* field,
                                             std::string* source) {
  for (const auto& [config, name] :
       {std::pair(&configs.tokenizer_config, "tokenizer_config.json"),
        std::pair(&configs.special_tokens_map, "special_tokens_map.json")}) {
    if (!config->contains(field)) continue;
    *source = configs.Path(name);
    return TokenContent(config->at(field)).value_or("");
  }
  return std::nullopt;
}

// `*id` from the configs for "bos" or "eos", where they say something.
absl::Status ConfigureTokenId(const Tokenizer& tokenizer, const TokenizerConfigs& configs,
                              const std::string& kind, std::optional<int32_t>* id) {
  const std::string id_field = kind + "_token_id";
  if (configs.generation_config.contains(id_field)) {
    json value = configs.generation_config.at(id_field);
    if (value.is_array() && !value.empty()) value = value.at(0);  // several EOS: the first
    if (value.is_number_integer()) {
      *id = value.get<int32_t>();
    } else if (value.is_null()) {
      *id = std::nullopt;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(configs.Path("generation_config.json"), ": ",
                                                     id_field, " is ", value.dump()));
    }
  }
  std::string source;
  const std::optional<std::string> content =
      ConfiguredContent(configs, (kind + "_token").c_str(), &source);
  if (content.has_value() && content->empty()) {
    *id = std::nullopt;
  } else if (content.has_value()) {
    const std::optional<int32_t> configured = tokenizer.TokenId(*content);
    if (!configured.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", kind, "_token '", *content,
                                                     "' is not a token of the tokenizer"));
    }
    *id = configured;
  }
  if (id->has_value() && (**id < 0 || **id >= tokenizer.vocabulary_size())) {
    return absl::InvalidArgumentError(absl::StrCat(configs.dir, ": the ", kind, " token id ", **id,
                                                   " is outside the vocabulary of ",
                                                   tokenizer.vocabulary_size()));
  }
  return absl::OkStatus();
}

// The tokenizer's special tokens with what the configs say laid over them.
absl::Status Configure(const TokenizerConfigs& configs, Tokenizer* tokenizer) {
  SpecialTokens special = tokenizer->special_tokens();
  RETURN_IF_ERROR(ConfigureTokenId(*tokenizer, configs, "bos", &special.bos_id));
  RETURN_IF_ERROR(ConfigureTokenId(*tokenizer, configs, "eos", &special.eos_id));
  const json add_bos = configs.tokenizer_config.value("add_bos_token", json());
  if (add_bos.is_boolean()) special.add_bos = add_bos.get<bool>();
  if (!special.bos_id.has_value()) special.add_bos = false;
  tokenizer->set_special_tokens(special);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePiece(const TokenizerConfigs& configs) {
  ASSIGN_OR_RETURN(std::unique_ptr<SentencePieceTokenizer> tokenizer,
                   SentencePieceTokenizer::Load(configs.Path("tokenizer.model")));
  ASSIGN_OR_RETURN(const std::vector<AddedToken> added, ConfiguredAddedTokens(configs));
  for (const AddedToken& token : added) {
    if (tokenizer->TokenId(token.content) != token.id) {
      return absl::InvalidArgumentError(
          absl::StrCat(configs.Path("tokenizer_config.json"), ": the added token '", token.content,
                       "' (id ", token.id,
                       ") is not that piece of tokenizer.model; tda does not add tokens to a "
                       "SentencePiece model"));
    }
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadVocabAndMerges(const TokenizerConfigs& configs) {
  ASSIGN_OR_RETURN(const std::vector<AddedToken> added, ConfiguredAddedTokens(configs));
  std::vector<std::string> special;
  for (const char* field : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    std::string source;
    const std::optional<std::string> content = ConfiguredContent(configs, field, &source);
    if (content.has_value() && !content->empty()) special.push_back(*content);
  }
  const bool gpt2_defaults = special.empty();
  if (gpt2_defaults) special.push_back(kGpt2EndOfText);
  ASSIGN_OR_RETURN(std::unique_ptr<BpeTokenizer> tokenizer,
                   BpeTokenizer::FromVocabAndMerges(configs.Path("vocab.json"),
                                                    configs.Path("merges.txt"), added, special));
  if (gpt2_defaults) {
    SpecialTokens defaults;
    defaults.bos_id = defaults.eos_id = tokenizer->TokenId(kGpt2EndOfText);
    tokenizer->set_special_tokens(defaults);
  }
  return tokenizer;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("tokenizer directory ", dir, " does not exist"));
  }
  ASSIGN_OR_RETURN(const TokenizerFiles files, FindTokenizerFiles(dir));
  return LoadTokenizerFiles(files);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFiles(const TokenizerFiles& files) {
  const std::string& dir = files.origin;
  ASSIGN_OR_RETURN(const TokenizerConfigs configs, ReadConfigs(files));
  std::unique_ptr<Tokenizer> tokenizer;
  if (std::filesystem::exists(configs.Path("tokenizer.model"))) {
    ASSIGN_OR_RETURN(tokenizer, LoadSentencePiece(configs));
  } else if (std::filesystem::exists(configs.Path("tokenizer.json"))) {
    ASSIGN_OR_RETURN(tokenizer, BpeTokenizer::FromTokenizerJson(configs.Path("tokenizer.json")));
  } else if (std::filesystem::exists(configs.Path("vocab.json")) ||
             std::filesystem::exists(configs.Path("merges.txt"))) {
    for (const char* name : {"vocab.json", "merges.txt"}) {
      if (!std::filesystem::exists(configs.Path(name))) {
        return absl::NotFoundError(absl::StrCat(dir, "/", name,
                                                " is missing (GPT-2 "
                                                "tokenizers need vocab.json and merges.txt)"));
      }
    }
    ASSIGN_OR_RETURN(tokenizer, LoadVocabAndMerges(configs));
  } else {
    return absl::NotFoundError(
        absl::StrCat(dir,
                     " has no tokenizer: none of tokenizer.model (SentencePiece), tokenizer.json "
                     "(Hugging Face) or vocab.json + merges.txt (GPT-2)"));
  }
  RETURN_IF_ERROR(Configure(configs, tokenizer.get()));
  return tokenizer;
}

}  // namespace tda
