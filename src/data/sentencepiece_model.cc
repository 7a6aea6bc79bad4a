// No Abseil header may be included here (see sentencepiece_model.h).
#include "data/sentencepiece_model.h"

#include <sentencepiece_processor.h>

namespace tda {

SentencePieceModel::SentencePieceModel(
    std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
    : processor_(std::move(processor)) {}

SentencePieceModel::~SentencePieceModel() = default;

std::unique_ptr<SentencePieceModel> SentencePieceModel::Parse(const std::string& bytes,
                                                              std::string* error) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  if (const auto loaded = processor->LoadFromSerializedProto(bytes); !loaded.ok()) {
    *error = loaded.ToString();
    return nullptr;
  }
  return std::unique_ptr<SentencePieceModel>(new SentencePieceModel(std::move(processor)));
}

bool SentencePieceModel::Encode(std::string_view text, std::vector<int>* ids,
                                std::string* error) const {
  const auto encoded = processor_->Encode(text, ids);
  if (!encoded.ok()) *error = encoded.ToString();
  return encoded.ok();
}

bool SentencePieceModel::Decode(const std::vector<int>& ids, std::string* text,
                                std::string* error) const {
  const auto decoded = processor_->Decode(ids, text);
  if (!decoded.ok()) *error = decoded.ToString();
  return decoded.ok();
}

int SentencePieceModel::pieces() const { return processor_->GetPieceSize(); }
int SentencePieceModel::bos_id() const { return processor_->bos_id(); }
int SentencePieceModel::eos_id() const { return processor_->eos_id(); }

int SentencePieceModel::PieceId(std::string_view piece) const {
  const int id = processor_->PieceToId(piece);
  // Unknown pieces map to the unknown piece's id.
  return processor_->IdToPiece(id) == piece ? id : -1;
}

}  // namespace tda
