// The C interface of libtda_sentencepiece.so, the only code linked against libsentencepiece.
// Debian's libsentencepiece.so.0 exports its own bundled copy of protobuf-lite; linked into a
// process beside libprotobuf.so.32 (gRPC, LibTorch) the two copies interpose each other and the
// process crashes while loading. tda therefore loads this module with dlopen(RTLD_LOCAL |
// RTLD_DEEPBIND) (sentencepiece_model.h): libsentencepiece then binds to its own protobuf and
// the process's protobuf never sees it. No Abseil here either: sentencepiece_processor.h
// declares absl::string_view as std::string_view, which clashes with Debian's Abseil.
//
// Buffers returned through `char**` / `int**` are malloc'ed; the caller frees them.
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

char* CopyOut(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out != nullptr) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

}  // namespace

extern "C" {

// A processor for the serialized model, or null with *error set.
void* tda_sentencepiece_load(const char* bytes, size_t size, char** error) {
  auto* processor = new sentencepiece::SentencePieceProcessor();
  const auto loaded = processor->LoadFromSerializedProto(std::string_view(bytes, size));
  if (loaded.ok()) return processor;
  *error = CopyOut(loaded.ToString());
  delete processor;
  return nullptr;
}

void tda_sentencepiece_free(void* processor) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(processor);
}

// 1 with *ids / *count set, or 0 with *error set.
int tda_sentencepiece_encode(const void* processor, const char* text, size_t size, int** ids,
                             size_t* count, char** error) {
  std::vector<int> encoded;
  const auto status = static_cast<const sentencepiece::SentencePieceProcessor*>(processor)->Encode(
      std::string_view(text, size), &encoded);
  if (!status.ok()) {
    *error = CopyOut(status.ToString());
    return 0;
  }
  *count = encoded.size();
  *ids = static_cast<int*>(std::malloc(sizeof(int) * (encoded.size() + 1)));
  std::memcpy(*ids, encoded.data(), sizeof(int) * encoded.size());
  return 1;
}

// 1 with *text / *size set, or 0 with *error set.
int tda_sentencepiece_decode(const void* processor, const int* ids, size_t count, char** text,
                             size_t* size, char** error) {
  std::string decoded;
  const auto status = static_cast<const sentencepiece::SentencePieceProcessor*>(processor)->Decode(
      std::vector<int>(ids, ids + count), &decoded);
  if (!status.ok()) {
    *error = CopyOut(status.ToString());
    return 0;
  }
  *size = decoded.size();
  *text = CopyOut(decoded);
  return 1;
}

// 0: the number of pieces, 1: the BOS id, 2: the EOS id (-1 when none).
int tda_sentencepiece_property(const void* processor, int property) {
  const auto* p = static_cast<const sentencepiece::SentencePieceProcessor*>(processor);
  return property == 0 ? p->GetPieceSize() : property == 1 ? p->bos_id() : p->eos_id();
}

// The id of `piece`, or -1 when it is not a piece of the model.
int tda_sentencepiece_piece_id(const void* processor, const char* piece, size_t size) {
  const auto* p = static_cast<const sentencepiece::SentencePieceProcessor*>(processor);
  const std::string_view text(piece, size);
  const int id = p->PieceToId(text);
  return p->IdToPiece(id) == text ? id : -1;
}

}  // extern "C"
