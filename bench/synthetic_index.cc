#include "synthetic_index.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "index/index_writer.h"

namespace tda::bench {

absl::Status WriteSyntheticIndex(const std::string& dir, int64_t rows, int64_t dim, RowDType dtype,
                                 const RowGenerator& generate) {
  std::filesystem::remove_all(dir);
  ASSIGN_OR_RETURN(std::unique_ptr<IndexWriter> writer,
                   IndexWriter::Create(dir, dim, 1 << 16, dtype));
  constexpr int64_t kChunk = 8192;
  std::vector<float> block(static_cast<size_t>(kChunk * dim));
  for (int64_t begin = 0; begin < rows; begin += kChunk) {
    const int64_t n = std::min(kChunk, rows - begin);
    generate(begin, n, block.data());
    std::vector<SampleRecord> samples;
    for (int64_t i = begin; i < begin + n; ++i) {
      samples.push_back({"row/" + std::to_string(i), "bench", 0, ""});
    }
    // AppendRows takes as many rows as there are samples.
    RETURN_IF_ERROR(writer->AppendRows(block.data(), samples));
  }
  RETURN_IF_ERROR(MakeDirectories(dir + "/model"));
  for (const char* f : {"factors.safetensors", "model/model.safetensors", "model/config.json"}) {
    RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + f, "{}"));
  }
  Manifest manifest;
  manifest.layer_dims = {dim};
  return writer->Finish(manifest);
}

}  // namespace tda::bench
