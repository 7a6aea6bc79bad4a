#include "common/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"

namespace tda {
namespace {

using json = nlohmann::json;

// Tensors start at an 8-byte aligned offset: pad the JSON header with spaces, as the reference
// implementation does, so f64 data can be read in place.
constexpr size_t kHeaderAlignment = 8;
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF64: return "F64";
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kU8: return "U8";
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF64: case DType::kI64: return 8;
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: return 2;
    case DType::kU8: return 1;
  }
  return 0;
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (DType d : {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64, DType::kI32,
                  DType::kU8}) {
    if (DTypeName(d) == name) return d;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported safetensors dtype '", std::string(name), "'"));
}

int64_t TensorView::numel() const { return Numel(shape); }

void SafetensorsWriter::Add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            const void* data) {
  Entry entry{dtype, std::move(shape), {}};
  entry.bytes.assign(static_cast<const char*>(data),
                     static_cast<size_t>(Numel(entry.shape)) * DTypeSize(dtype));
  tensors_[name] = std::move(entry);
}

std::string SafetensorsWriter::Serialize() const {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, entry] : tensors_) {
    header[name] = {{"dtype", std::string(DTypeName(entry.dtype))},
                    {"shape", entry.shape},
                    {"data_offsets", {offset, offset + entry.bytes.size()}}};
    offset += entry.bytes.size();
  }
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::string text = header.dump();
  while ((8 + text.size()) % kHeaderAlignment != 0) text.push_back(' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  for (const auto& [name, entry] : tensors_) out += entry.bytes;
  return out;
}

absl::Status SafetensorsWriter::WriteAtomically(const std::string& path) const {
  return WriteFileAtomically(path, Serialize());
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Read(const std::string& path) {
  std::string bytes;
  if (absl::Status s = ReadFile(path, &bytes); !s.ok()) return s;
  return Parse(std::move(bytes), path);
}

namespace {

// One tensor's entry: its info and byte range within the data section.
struct HeaderEntry {
  TensorInfo info;
  uint64_t begin = 0, end = 0;
};

struct Header {
  uint64_t data_begin = 0;  // 8 + header length
  std::map<std::string, HeaderEntry> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses and validates the header given the file's first bytes (at least the header) and its
// total size.
absl::StatusOr<Header> ParseHeader(std::string_view bytes, uint64_t file_size,
                                   const std::string& source) {
  auto corrupt = [&source](const std::string& what) {
    return absl::DataLossError(absl::StrCat("safetensors file ", source, ": ", what));
  };
  if (file_size < 8 || bytes.size() < 8) {
    return corrupt(absl::StrCat("only ", file_size, " bytes, truncated"));
  }
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) {
    header_len |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  if (header_len > kMaxHeaderBytes || header_len > file_size - 8 || header_len > bytes.size() - 8) {
    return corrupt(absl::StrCat("header length ", header_len, " exceeds file size ", file_size));
  }
  json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<int64_t>(header_len),
                            nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return corrupt("header is not a JSON object");

  Header out;
  out.data_begin = 8 + header_len;
  const uint64_t data_size = file_size - out.data_begin;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const json& value = it.value();
    if (it.key() == "__metadata__") {
      if (!value.is_object()) return corrupt("__metadata__ is not an object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) return corrupt("__metadata__ values must be strings");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets") || !value["dtype"].is_string() ||
        !value["shape"].is_array() || !value["data_offsets"].is_array() ||
        value["data_offsets"].size() != 2) {
      return corrupt(absl::StrCat("tensor '", it.key(), "' has a malformed entry"));
    }
    auto dtype = ParseDType(value["dtype"].get<std::string>());
    if (!dtype.ok()) return corrupt(absl::StrCat("tensor '", it.key(), "': ", dtype.status().message()));
    HeaderEntry entry;
    entry.info.dtype = *dtype;
    uint64_t numel = 1;
    for (const json& d : value["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40)) {
        return corrupt(absl::StrCat("tensor '", it.key(), "' has an invalid shape"));
      }
      entry.info.shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
      if (numel > (1ull << 40)) return corrupt(absl::StrCat("tensor '", it.key(), "' is too large"));
    }
    const json& offs = value["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
      return corrupt(absl::StrCat("tensor '", it.key(), "' has invalid data_offsets"));
    }
    entry.begin = offs[0].get<uint64_t>();
    entry.end = offs[1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size ||
        entry.end - entry.begin != numel * DTypeSize(entry.info.dtype)) {
      return corrupt(absl::StrCat("tensor '", it.key(), "' byte range [", entry.begin, ", ",
                                  entry.end, ") does not fit its shape or the file (", data_size,
                                  " data bytes); truncated?"));
    }
    ranges.emplace_back(entry.begin, entry.end);
    out.tensors[it.key()] = std::move(entry);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return corrupt("tensor byte ranges overlap");
  }
  return out;
}

}  // namespace

int64_t TensorInfo::bytes() const { return Numel(shape) * static_cast<int64_t>(DTypeSize(dtype)); }

absl::StatusOr<std::map<std::string, TensorInfo>> ReadSafetensorsTable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  std::string prefix(8, '\0');
  in.read(prefix.data(), 8);
  uint64_t header_len = 0;
  for (int i = 0; i < 8 && in; ++i) {
    header_len |= static_cast<uint64_t>(static_cast<unsigned char>(prefix[i])) << (8 * i);
  }
  if (in && header_len <= kMaxHeaderBytes && header_len <= file_size - 8) {
    prefix.resize(8 + header_len);
    in.read(prefix.data() + 8, static_cast<std::streamsize>(header_len));
  }
  absl::StatusOr<Header> header = ParseHeader(prefix, file_size, path);
  if (!header.ok()) return header.status();
  std::map<std::string, TensorInfo> out;
  for (const auto& [name, entry] : header->tensors) out[name] = entry.info;
  return out;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(std::string bytes,
                                                                        std::string source) {
  absl::StatusOr<Header> header = ParseHeader(bytes, bytes.size(), source);
  if (!header.ok()) return header.status();
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->source_ = std::move(source);
  file->bytes_ = std::move(bytes);
  file->metadata_ = std::move(header->metadata);
  for (const auto& [name, entry] : header->tensors) {
    TensorView view;
    view.dtype = entry.info.dtype;
    view.shape = entry.info.shape;
    view.bytes = std::string_view(file->bytes_.data() + header->data_begin + entry.begin,
                                  entry.end - entry.begin);
    file->tensors_[name] = std::move(view);
  }
  return file;
}

absl::StatusOr<TensorView> SafetensorsFile::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor '", name, "' not found in ", source_));
  }
  return it->second;
}

absl::StatusOr<TensorView> SafetensorsFile::Get(const std::string& name, DType dtype,
                                                const std::vector<int64_t>& shape) const {
  absl::StatusOr<TensorView> view = Get(name);
  if (!view.ok()) return view;
  if (view->dtype != dtype || view->shape != shape) {
    return absl::DataLossError(absl::StrCat(
        source_, ": tensor '", name, "' is ", DTypeName(view->dtype), "[",
        absl::StrJoin(view->shape, ","), "], expected ", DTypeName(dtype), "[",
        absl::StrJoin(shape, ","), "]"));
  }
  return view;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

}  // namespace tda
