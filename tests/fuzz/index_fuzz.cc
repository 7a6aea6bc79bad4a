// libFuzzer target for the index open/read path: the manifest parser (ManifestFromJson) and the
// reader of a whole index directory (GradientIndex::Open, Score, CopyRow, VerifyIndex).
//
// Input layout (FuzzedDataProvider): the manifest, samples.tsv, factors.safetensors,
// model/model.safetensors, model/config.json, the tombstone file, a shard count in [0, 3], then
// that many shards (the last takes the remaining bytes). Each part is written into a per-process
// directory under the names tda's writer uses (shards under all three dtype extensions), so a
// mutated manifest finds real files of mutated sizes. The index is opened with size checks only
// (Verify::kSizes), since random bytes never match a checksum, then with full verification.
//
// Properties checked beyond "no crash, no leak, no sanitizer report": a manifest that parses
// survives ManifestToJson -> ManifestFromJson unchanged; an index that opens answers Score, Scan
// (top-k never names a deleted row) and CopyRow for every row with the shapes the manifest
// promises.
//
// With TDA_FUZZ_WRITE_SEEDS=DIR set, LLVMFuzzerInitialize first writes seed inputs into DIR,
// encoded from small real indexes written by IndexWriter (f32 in two shards with a deleted row,
// bf16, f16, empty).
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "index/gradient_index.h"
#include "index/index_writer.h"
#include "index/manifest.h"

namespace {

constexpr int kMaxShards = 3;
constexpr int64_t kMaxScoredDim = 1 << 16;
constexpr const char* kTombstoneFile = "tombstones-00001.txt";
const char* const kExtensions[] = {"f32", "bf16", "f16"};

std::string ShardName(int i, const char* ext) {
  char name[32];
  std::snprintf(name, sizeof(name), "grads-%05d.%s", i, ext);
  return name;
}

std::string& FuzzDir() {
  static std::string dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "tda-index-fuzz-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    std::filesystem::create_directories(pattern + "/model");
    return pattern;
  }();
  return dir;
}

void WriteRaw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadRaw(const std::string& path) {
  std::string bytes;
  if (!tda::ReadFile(path, &bytes).ok()) return "";
  return bytes;
}

// The inverse of FuzzedDataProvider::ConsumeRandomLengthString: backslashes doubled, then a
// backslash and a non-backslash byte end the string.
std::string EncodeString(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '\\') out += '\\';
  }
  return out + "\\x";
}

bool SameManifest(const tda::Manifest& a, const tda::Manifest& b) {
  return tda::ManifestToJson(a) == tda::ManifestToJson(b);
}

// Writes the parts of a fuzz input into FuzzDir(); returns the manifest text.
std::string UnpackInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const std::string dir = FuzzDir();
  const std::string manifest = input.ConsumeRandomLengthString();
  const std::string parts[] = {input.ConsumeRandomLengthString(), input.ConsumeRandomLengthString(),
                               input.ConsumeRandomLengthString(), input.ConsumeRandomLengthString(),
                               input.ConsumeRandomLengthString()};
  const char* const names[] = {"samples.tsv", "factors.safetensors", "model/model.safetensors",
                               "model/config.json", kTombstoneFile};
  const int shards = input.ConsumeIntegralInRange<int>(0, kMaxShards);
  WriteRaw(dir + "/" + tda::kManifestFile, manifest);
  for (int i = 0; i < 5; ++i) WriteRaw(dir + "/" + names[i], parts[i]);
  for (int i = 0; i < kMaxShards; ++i) {
    const std::string bytes = i >= shards                ? std::string()
                              : i + 1 < shards ? input.ConsumeRandomLengthString()
                                               : input.ConsumeRemainingBytesAsString();
    for (const char* ext : kExtensions) {
      const std::string path = dir + "/" + ShardName(i, ext);
      if (i < shards) {
        WriteRaw(path, bytes);
      } else {
        std::filesystem::remove(path);
      }
    }
  }
  return manifest;
}

void WriteSeeds(const std::string& corpus) {
  std::filesystem::create_directories(corpus);
  struct Spec {
    const char* name;
    tda::RowDType dtype;
    int64_t rows, dim, rows_per_shard;
  };
  const Spec specs[] = {{"f32-two-shards", tda::RowDType::kF32, 5, 6, 3},
                        {"bf16", tda::RowDType::kBF16, 3, 4, 8},
                        {"f16", tda::RowDType::kF16, 2, 8, 8},
                        {"empty", tda::RowDType::kF32, 0, 2, 8}};
  for (const Spec& spec : specs) {
    const std::string dir = FuzzDir() + "/seed-" + spec.name;
    std::filesystem::remove_all(dir);
    auto writer = tda::IndexWriter::Create(dir, spec.dim, spec.rows_per_shard, spec.dtype);
    if (!writer.ok()) std::abort();
    std::vector<float> rows(static_cast<size_t>(spec.rows * spec.dim));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 7) - 2.5f;
    std::vector<tda::SampleRecord> samples;
    for (int64_t r = 0; r < spec.rows; ++r) {
      samples.push_back({absl::StrCat("fashion-mnist/train/", r), "fashion-mnist/train",
                         static_cast<int32_t>(r % 10), "class"});
    }
    if (spec.rows > 0 && !(*writer)->AppendRows(rows.data(), samples).ok()) std::abort();
    std::filesystem::create_directories(dir + "/model");
    WriteRaw(dir + "/factors.safetensors", "factors");
    WriteRaw(dir + "/model/model.safetensors", "weights");
    WriteRaw(dir + "/model/config.json", "{}");
    tda::Manifest m;
    m.model_fingerprint = "0123456789abcdef";
    m.dataset = "fashion-mnist/train";
    m.layer_dims = {spec.dim - 1, 1};
    if (!(*writer)->Finish(m).ok()) std::abort();
    // The f32 seed also has a deleted row (format version 2), so the tombstone parser is reached.
    std::string tombstones;
    std::string manifest_text = ReadRaw(dir + "/manifest.json");
    if (spec.dtype == tda::RowDType::kF32 && spec.rows > 1) {
      tombstones = "1\tfashion-mnist/train/1\n";
      tda::Manifest with = tda::ManifestFromJson(manifest_text, "seed").value();
      with.generation = 1;
      with.tombstones = {kTombstoneFile, tombstones.size(), tda::ChecksumHex(tda::Xxh3(tombstones))};
      manifest_text = tda::ManifestToJson(with);
    }
    std::string input;
    input += EncodeString(manifest_text);
    input += EncodeString(ReadRaw(dir + "/samples.tsv"));
    input += EncodeString("factors");
    input += EncodeString("weights");
    input += EncodeString("{}");
    input += EncodeString(tombstones);
    const int shards = static_cast<int>((spec.rows + spec.rows_per_shard - 1) / spec.rows_per_shard);
    // ConsumeIntegralInRange reads from the end of the input: one byte, shards + 4k.
    std::string shard_bytes;
    for (int i = 0; i < shards; ++i) {
      std::string bytes =
          ReadRaw(dir + "/" + ShardName(i, tda::RowDTypeName(spec.dtype)));
      shard_bytes += i + 1 < shards ? EncodeString(bytes) : bytes;
    }
    input += shard_bytes;
    input += static_cast<char>(shards);
    WriteRaw(corpus + "/seed-" + spec.name, input);
    std::filesystem::remove_all(dir);
    // A seed is a real index: it must open with full verification once unpacked.
    UnpackInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    absl::StatusOr<std::unique_ptr<tda::GradientIndex>> opened =
        tda::GradientIndex::Open(FuzzDir(), tda::GradientIndex::Verify::kFull);
    if (!opened.ok() || (*opened)->deleted_rows() != (tombstones.empty() ? 0 : 1)) {
      std::fprintf(stderr, "seed %s does not open as written: %s\n", spec.name,
                   opened.status().ToString().c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (const char* corpus = std::getenv("TDA_FUZZ_WRITE_SEEDS")) WriteSeeds(corpus);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = FuzzDir();
  const std::string manifest = UnpackInput(data, size);

  // The parser alone, and its round trip.
  absl::StatusOr<tda::Manifest> parsed = tda::ManifestFromJson(manifest, "fuzz/manifest.json");
  if (parsed.ok()) {
    absl::StatusOr<tda::Manifest> again =
        tda::ManifestFromJson(tda::ManifestToJson(*parsed), "fuzz/manifest.json");
    if (!again.ok() || !SameManifest(*parsed, *again)) std::abort();
  }

  // The reader of the whole directory.
  for (auto verify : {tda::GradientIndex::Verify::kSizes, tda::GradientIndex::Verify::kFull}) {
    absl::StatusOr<std::unique_ptr<tda::GradientIndex>> index = tda::GradientIndex::Open(dir, verify);
    if (!index.ok()) continue;
    const tda::GradientIndex& gi = **index;
    if (gi.dim() > kMaxScoredDim) continue;
    Eigen::MatrixXf queries = Eigen::MatrixXf::Ones(gi.dim(), 2);
    Eigen::MatrixXf scores = gi.Score(queries);
    if (scores.rows() != gi.rows() || scores.cols() != 2) std::abort();
    tda::ScanOptions options;
    options.top_k = 3;
    options.source_sums = true;
    tda::ScanResult scan = gi.Scan(queries, options);
    if (scan.proponents.size() != 2 || scan.source_sums.size() != 2 ||
        scan.source_sums[0].size() != gi.sources().size()) {
      std::abort();
    }
    for (const tda::ScoredRow& hit : scan.proponents[0]) {
      if (hit.row < 0 || hit.row >= gi.rows() || gi.is_deleted(hit.row)) std::abort();
    }
    std::vector<float> row(static_cast<size_t>(gi.dim()));
    for (int64_t r = 0; r < gi.rows(); ++r) {
      if (!gi.CopyRow(r, row.data())) std::abort();
      if (gi.FindRow(gi.sample(r).id) != r) std::abort();
    }
    if (gi.CopyRow(gi.rows(), row.data())) std::abort();
  }
  (void)tda::VerifyIndex(dir);
  return 0;
}
