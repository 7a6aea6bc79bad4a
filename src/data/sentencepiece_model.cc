#include "data/sentencepiece_model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <type_traits>

namespace tda {

struct SentencePieceModel::Module {
  void* (*load)(const char*, size_t, char**) = nullptr;
  void (*free)(void*) = nullptr;
  int (*encode)(const void*, const char*, size_t, int**, size_t*, char**) = nullptr;
  int (*decode)(const void*, const int*, size_t, char**, size_t*, char**) = nullptr;
  int (*property)(const void*, int) = nullptr;
  int (*piece_id)(const void*, const char*, size_t) = nullptr;
};

namespace {

constexpr char kModuleName[] = "libtda_sentencepiece.so";

// Takes a malloc'ed message from the module.
std::string TakeMessage(char* message) {
  std::string text = message == nullptr ? "(no message)" : message;
  std::free(message);
  return text;
}

// Where the module may be, in order.
std::vector<std::string> ModuleCandidates() {
  std::vector<std::string> candidates;
  if (const char* path = std::getenv("TDA_SENTENCEPIECE_MODULE"); path != nullptr && *path != 0) {
    candidates.push_back(path);
  }
  candidates.push_back(TDA_SENTENCEPIECE_MODULE_BUILD_PATH);
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back((exe.parent_path() / kModuleName).string());
    candidates.push_back((exe.parent_path().parent_path() / "lib" / kModuleName).string());
  }
  return candidates;
}

}  // namespace

std::unique_ptr<SentencePieceModel> SentencePieceModel::Parse(const std::string& bytes,
                                                              std::string* error) {
  static std::once_flag once;
  static Module* module = nullptr;
  static std::string load_error;
  std::call_once(once, [] {
    std::string tried;
    for (const std::string& path : ModuleCandidates()) {
      if (!std::filesystem::exists(path)) {
        tried += " " + path;
        continue;
      }
      // RTLD_DEEPBIND: libsentencepiece binds to its own protobuf-lite, not the process's.
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle == nullptr) {
        load_error = "cannot load " + path + ": " + dlerror();
        return;
      }
      auto* loaded = new Module();
      auto bind = [&](auto* function, const char* name) {
        *function =
            reinterpret_cast<std::remove_pointer_t<decltype(function)>>(dlsym(handle, name));
        return *function != nullptr;
      };
      if (!bind(&loaded->load, "tda_sentencepiece_load") ||
          !bind(&loaded->free, "tda_sentencepiece_free") ||
          !bind(&loaded->encode, "tda_sentencepiece_encode") ||
          !bind(&loaded->decode, "tda_sentencepiece_decode") ||
          !bind(&loaded->property, "tda_sentencepiece_property") ||
          !bind(&loaded->piece_id, "tda_sentencepiece_piece_id")) {
        load_error = path + " is not tda's SentencePiece module";
        delete loaded;
        return;
      }
      module = loaded;
      return;
    }
    load_error = std::string("the SentencePiece module ") + kModuleName + " is not at any of" +
                 tried + " (set TDA_SENTENCEPIECE_MODULE)";
  });
  if (module == nullptr) {
    *error = load_error;
    return nullptr;
  }
  char* message = nullptr;
  void* processor = module->load(bytes.data(), bytes.size(), &message);
  if (processor == nullptr) {
    *error = TakeMessage(message);
    return nullptr;
  }
  return std::unique_ptr<SentencePieceModel>(new SentencePieceModel(module, processor));
}

SentencePieceModel::SentencePieceModel(const Module* module, void* processor)
    : module_(module), processor_(processor) {}

SentencePieceModel::~SentencePieceModel() { module_->free(processor_); }

bool SentencePieceModel::Encode(std::string_view text, std::vector<int>* ids,
                                std::string* error) const {
  int* out = nullptr;
  size_t count = 0;
  char* message = nullptr;
  if (!module_->encode(processor_, text.data(), text.size(), &out, &count, &message)) {
    *error = TakeMessage(message);
    return false;
  }
  ids->assign(out, out + count);
  std::free(out);
  return true;
}

bool SentencePieceModel::Decode(const std::vector<int>& ids, std::string* text,
                                std::string* error) const {
  char* out = nullptr;
  size_t size = 0;
  char* message = nullptr;
  if (!module_->decode(processor_, ids.data(), ids.size(), &out, &size, &message)) {
    *error = TakeMessage(message);
    return false;
  }
  text->assign(out, size);
  std::free(out);
  return true;
}

int SentencePieceModel::pieces() const { return module_->property(processor_, 0); }
int SentencePieceModel::bos_id() const { return module_->property(processor_, 1); }
int SentencePieceModel::eos_id() const { return module_->property(processor_, 2); }

int SentencePieceModel::PieceId(std::string_view piece) const {
  return module_->piece_id(processor_, piece.data(), piece.size());
}

}  // namespace tda
