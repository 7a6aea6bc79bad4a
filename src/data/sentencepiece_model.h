// libsentencepiece's processor behind a plain C++ interface, compiled in a translation unit that
// includes no Abseil header: Debian's sentencepiece_processor.h declares absl::string_view as
// std::string_view, which clashes with Debian's Abseil (where absl::string_view is a class).
// Errors come back as text; sentencepiece_tokenizer.h turns them into statuses.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tda {

class SentencePieceModel {
 public:
  // The model serialized in `bytes` (a tokenizer.model file); null with *error set when it is not
  // one.
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
  explicit SentencePieceModel(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace tda
