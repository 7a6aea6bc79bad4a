// libsentencepiece's processor, reached through the module libtda_sentencepiece.so
// (sentencepiece_module.cc explains why it is a separate module loaded with dlopen). The module
// is found at $TDA_SENTENCEPIECE_MODULE, else where the build placed it, else beside the
// executable (for installed binaries); errors come back as text and
// sentencepiece_tokenizer.h turns them into statuses.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tda {

class SentencePieceModel {
 public:
  // The model serialized in `bytes` (a tokenizer.model file); null with *error set when it is not
  // one or the module cannot be loaded.
  static std::unique_ptr<SentencePieceModel> Parse(const std::string& bytes, std::string* error);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  // False with *error set when the processor fails.
  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const;
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const;

  int pieces() const;
  int bos_id() const;  // -1 when the model has none
  int eos_id() const;  // -1 when the model has none
  // The piece's id; -1 when `piece` is not a piece of the model.
  int PieceId(std::string_view piece) const;

 private:
  struct Module;  // the loaded module's functions
  SentencePieceModel(const Module* module, void* processor);
  const Module* module_;
  void* processor_;
};

}  // namespace tda
