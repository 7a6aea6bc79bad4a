#include "index/ann_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/checksum.h"
#include "common/status_macros.h"

namespace tda {
namespace {

using json = nlohmann::json;

constexpr int64_t kAddBatchRows = 16384;
constexpr int kSidecarVersion = 1;
constexpr int64_t kMinTrainRowsPerCentroid = 39;

std::string PathIn(const std::string& dir, const char* file) { return dir + "/" + file; }

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// FAISS output streamed into an AtomicFileWriter, hashed on the way.
class AtomicIoWriter : public faiss::IOWriter {
 public:
  explicit AtomicIoWriter(AtomicFileWriter* file) : file_(file) {}
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    if (!status_.ok()) return 0;
    status_ = file_->Append(ptr, size * nitems);
    if (!status_.ok()) return 0;
    hash_.Update(ptr, size * nitems);
    return nitems;
  }
  const absl::Status& status() const { return status_; }
  uint64_t digest() const { return hash_.Digest(); }

 private:
  AtomicFileWriter* file_;
  absl::Status status_;
  Xxh3Stream hash_;
};

// A file read once, hashed on the way, so the bytes FAISS parses are the bytes checksummed.
class HashingIoReader : public faiss::IOReader {
 public:
  explicit HashingIoReader(std::FILE* file) : file_(file) {}
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    const size_t got = std::fread(ptr, size, nitems, file_);
    hash_.Update(ptr, got * size);
    bytes_ += got * size;
    return got;
  }
  // Hashes whatever FAISS did not read (a longer file must not pass for a valid one).
  void Drain() {
    char buffer[1 << 16];
    size_t got;
    while ((got = std::fread(buffer, 1, sizeof(buffer), file_)) > 0) {
      hash_.Update(buffer, got);
      bytes_ += got;
    }
  }
  uint64_t digest() const { return hash_.Digest(); }
  uint64_t bytes() const { return bytes_; }

 private:
  std::FILE* file_;
  Xxh3Stream hash_;
  uint64_t bytes_ = 0;
};

json SidecarToJson(const AnnInfo& info) {
  const AnnParameters& p = info.parameters;
  return {{"version", kSidecarVersion},
          {"kind", AnnKindName(p.kind)},
          {"metric", "inner_product"},
          {"parameters",
           {{"nlist", p.nlist},
            {"pq_m", p.pq_m},
            {"pq_bits", p.pq_bits},
            {"hnsw_m", p.hnsw_m},
            {"train_rows", p.train_rows}}},
          {"rows", info.rows},
          {"dim", info.dim},
          {"manifest_xxh3", info.manifest_xxh3},
          {"file", {{"file", kAnnFile}, {"bytes", info.ann_bytes}, {"xxh3", info.ann_xxh3}}}};
}

absl::StatusOr<AnnInfo> SidecarFromJson(const std::string& text, const std::string& path) {
  try {
    const json j = json::parse(text);
    if (j.at("version").get<int>() > kSidecarVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": ANN sidecar version ", j.at("version").get<int>(), " is newer than this tda (",
          kSidecarVersion, "); rebuild it with 'tda index ann --overwrite' or upgrade tda"));
    }
    AnnInfo info;
    ASSIGN_OR_RETURN(info.parameters.kind, ParseAnnKind(j.at("kind").get<std::string>()));
    const json& p = j.at("parameters");
    info.parameters.nlist = p.at("nlist").get<int64_t>();
    info.parameters.pq_m = p.at("pq_m").get<int64_t>();
    info.parameters.pq_bits = p.at("pq_bits").get<int64_t>();
    info.parameters.hnsw_m = p.at("hnsw_m").get<int64_t>();
    info.parameters.train_rows = p.at("train_rows").get<int64_t>();
    info.rows = j.at("rows").get<int64_t>();
    info.dim = j.at("dim").get<int64_t>();
    info.manifest_xxh3 = j.at("manifest_xxh3").get<std::string>();
    info.ann_bytes = j.at("file").at("bytes").get<uint64_t>();
    info.ann_xxh3 = j.at("file").at("xxh3").get<std::string>();
    return info;
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": malformed ANN sidecar (", e.what(),
                                            "); rebuild it with 'tda index ann --overwrite'"));
  }
}

absl::StatusOr<std::string> ManifestChecksum(const std::string& dir) {
  std::string manifest;
  RETURN_IF_ERROR(ReadFile(PathIn(dir, kManifestFile), &manifest));
  return ChecksumHex(Xxh3(manifest));
}

// Rows [begin, end) of the index as f32, row-major.
std::vector<float> RowsAsF32(const GradientIndex& index, int64_t begin, int64_t end) {
  std::vector<float> rows(static_cast<size_t>((end - begin) * index.dim()));
  for (int64_t r = begin; r < end; ++r) index.CopyRow(r, &rows[(r - begin) * index.dim()]);
  return rows;
}

std::unique_ptr<faiss::Index> NewFaissIndex(const AnnParameters& p, int64_t dim) {
  const int d = static_cast<int>(dim);
  switch (p.kind) {
    case AnnKind::kIvfFlat: {
      auto index = std::make_unique<faiss::IndexIVFFlat>(new faiss::IndexFlatIP(d), d, p.nlist,
                                                         faiss::METRIC_INNER_PRODUCT);
      index->own_fields = true;
      return index;
    }
    case AnnKind::kIvfPq: {
      auto index = std::make_unique<faiss::IndexIVFPQ>(
          new faiss::IndexFlatIP(d), d, p.nlist, p.pq_m, p.pq_bits, faiss::METRIC_INNER_PRODUCT);
      index->own_fields = true;
      return index;
    }
    case AnnKind::kHnsw:
      return std::make_unique<faiss::IndexHNSWFlat>(d, static_cast<int>(p.hnsw_m),
                                                    faiss::METRIC_INNER_PRODUCT);
  }
  return nullptr;
}

}  // namespace

const char* AnnKindName(AnnKind kind) {
  switch (kind) {
    case AnnKind::kIvfPq:
      return "ivf-pq";
    case AnnKind::kHnsw:
      return "hnsw";
    case AnnKind::kIvfFlat:
      break;
  }
  return "ivf-flat";
}

absl::StatusOr<AnnKind> ParseAnnKind(const std::string& name) {
  if (name == "ivf-flat") return AnnKind::kIvfFlat;
  if (name == "ivf-pq") return AnnKind::kIvfPq;
  if (name == "hnsw") return AnnKind::kHnsw;
  return absl::InvalidArgumentError(
      absl::StrCat("ANN kind must be ivf-flat, ivf-pq or hnsw, got '", name, "'"));
}

absl::StatusOr<AnnParameters> ResolveAnnParameters(const AnnParameters& requested, int64_t rows,
                                                   int64_t dim) {
  AnnParameters p = requested;
  if (rows < 1 || dim < 1) {
    return absl::InvalidArgumentError("an ANN needs an index with at least one row");
  }
  if (p.nlist < 0 || p.pq_m < 0 || p.pq_bits < 0 || p.hnsw_m < 0 || p.train_rows < 0) {
    return absl::InvalidArgumentError("ANN parameters must be >= 0 (0: the default)");
  }
  if (p.kind == AnnKind::kHnsw) {
    p.nlist = p.pq_m = p.pq_bits = p.train_rows = 0;
    if (p.hnsw_m == 0) p.hnsw_m = 32;
    if (p.hnsw_m < 2 || p.hnsw_m > 512) {
      return absl::InvalidArgumentError(
          absl::StrCat("--hnsw-m must be in [2, 512], got ", p.hnsw_m));
    }
    return p;
  }
  p.hnsw_m = 0;
  // FAISS's guidance: ~4 sqrt(rows) lists, and at least 39 training rows per k-means centroid.
  if (p.nlist == 0) {
    p.nlist = std::clamp<int64_t>(
        std::min<int64_t>(std::llround(4.0 * std::sqrt(static_cast<double>(rows))),
                          rows / kMinTrainRowsPerCentroid),
        1, rows);
  }
  if (p.nlist > rows) {
    return absl::InvalidArgumentError(absl::StrCat("--nlist ", p.nlist, " exceeds the index's ",
                                                   rows, " rows; pass at most ", rows,
                                                   " (default 4 sqrt(rows))"));
  }
  if (p.train_rows == 0) p.train_rows = std::min(rows, std::max<int64_t>(64 * p.nlist, 10000));
  if (p.train_rows < p.nlist || p.train_rows > rows) {
    return absl::InvalidArgumentError(absl::StrCat("training rows must be in [nlist = ", p.nlist,
                                                   ", rows = ", rows, "], got ", p.train_rows));
  }
  if (p.kind == AnnKind::kIvfFlat) {
    p.pq_m = p.pq_bits = 0;
    return p;
  }
  if (p.pq_bits == 0) {  // 8, or fewer when the training rows cannot fit 2^8 centroids
    p.pq_bits = 8;
    while (p.pq_bits > 1 && (int64_t{1} << p.pq_bits) * kMinTrainRowsPerCentroid > p.train_rows) {
      --p.pq_bits;
    }
  }
  if (p.pq_bits > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("--pq-bits must be in [1, 16], got ", p.pq_bits));
  }
  if (p.pq_m == 0) {
    for (int64_t m = std::min<int64_t>(64, std::max<int64_t>(1, dim / 2)); m >= 1; --m) {
      if (dim % m == 0) {
        p.pq_m = m;
        break;
      }
    }
  }
  if (dim % p.pq_m != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--m ", p.pq_m, " must divide the index's ", dim, " dimensions"));
  }
  // PQ trains 2^bits centroids per sub-quantizer from the training rows.
  if (p.train_rows < (int64_t{1} << p.pq_bits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("IVF-PQ with ", p.pq_bits, " bits needs at least ", int64_t{1} << p.pq_bits,
                     " training rows, the index has ", rows, "; pass a smaller --pq-bits"));
  }
  return p;
}

struct AnnIndex::Impl {
  std::unique_ptr<faiss::Index> index;
};

AnnIndex::AnnIndex() : impl_(std::make_unique<Impl>()) {}
AnnIndex::~AnnIndex() = default;

bool AnnIndex::Exists(const std::string& index_dir) {
  return FileExists(PathIn(index_dir, kAnnSidecarFile)) || FileExists(PathIn(index_dir, kAnnFile));
}

absl::StatusOr<AnnInfo> AnnIndex::Build(const GradientIndex& index, const AnnParameters& parameters,
                                        bool overwrite, const ProgressFn& progress) {
  const std::string& dir = index.dir();
  if (!overwrite && Exists(dir)) {
    return absl::AlreadyExistsError(absl::StrCat("index ", dir, " already has an ANN (", kAnnFile,
                                                 " / ", kAnnSidecarFile,
                                                 "); pass --overwrite to replace it"));
  }
  AnnInfo info;
  ASSIGN_OR_RETURN(info.parameters, ResolveAnnParameters(parameters, index.rows(), index.dim()));
  info.rows = index.rows();
  info.dim = index.dim();
  ASSIGN_OR_RETURN(info.manifest_xxh3, ManifestChecksum(dir));
  const AnnParameters& p = info.parameters;
  try {
    std::unique_ptr<faiss::Index> ann = NewFaissIndex(p, index.dim());
    if (p.kind != AnnKind::kHnsw) {
      // Evenly spaced training rows: a sample of the whole index, not of its first shard.
      ReportProgress(progress, "ann train", 0, p.train_rows);
      std::vector<float> train(static_cast<size_t>(p.train_rows * index.dim()));
      for (int64_t t = 0; t < p.train_rows; ++t) {
        index.CopyRow(t * index.rows() / p.train_rows, &train[t * index.dim()]);
      }
      ann->train(p.train_rows, train.data());
      ReportProgress(progress, "ann train", p.train_rows, p.train_rows);
    }
    // Ids are row numbers: FAISS numbers added vectors 0, 1, ... in order.
    for (int64_t begin = 0; begin < index.rows(); begin += kAddBatchRows) {
      const int64_t end = std::min(index.rows(), begin + kAddBatchRows);
      const std::vector<float> rows = RowsAsF32(index, begin, end);
      ann->add(end - begin, rows.data());
      ReportProgress(progress, "ann add", end, index.rows());
    }
    ReportProgress(progress, "ann write", 0, 1);
    AtomicFileWriter file;
    RETURN_IF_ERROR(file.Open(PathIn(dir, kAnnFile)));
    AtomicIoWriter writer(&file);
    faiss::write_index(ann.get(), &writer);
    RETURN_IF_ERROR(writer.status());
    info.ann_bytes = file.bytes_written();
    info.ann_xxh3 = ChecksumHex(writer.digest());
    RETURN_IF_ERROR(file.Commit());
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS could not build the ", AnnKindName(p.kind),
                                            " index of ", dir, ": ", e.what()));
  }
  RETURN_IF_ERROR(
      WriteFileAtomically(PathIn(dir, kAnnSidecarFile), SidecarToJson(info).dump(2) + "\n"));
  ReportProgress(progress, "ann write", 1, 1);
  return info;
}

absl::StatusOr<std::unique_ptr<AnnIndex>> AnnIndex::Open(const GradientIndex& index) {
  const std::string& dir = index.dir();
  const std::string sidecar_path = PathIn(dir, kAnnSidecarFile);
  const std::string ann_path = PathIn(dir, kAnnFile);
  if (!Exists(dir)) {
    return absl::NotFoundError(absl::StrCat("index ", dir,
                                            " has no ANN for approximate search; "
                                            "build one with 'tda index ann --index ",
                                            dir, "'"));
  }
  std::string sidecar;
  absl::Status read = ReadFile(sidecar_path, &sidecar);
  if (!read.ok()) {
    return absl::DataLossError(absl::StrCat(sidecar_path, ": ", read.message(),
                                            "; rebuild the ANN with 'tda index ann --overwrite'"));
  }
  auto ann = std::unique_ptr<AnnIndex>(new AnnIndex());
  ASSIGN_OR_RETURN(ann->info_, SidecarFromJson(sidecar, sidecar_path));
  const AnnInfo& info = ann->info_;
  ASSIGN_OR_RETURN(const std::string manifest_xxh3, ManifestChecksum(dir));
  if (manifest_xxh3 != info.manifest_xxh3 || info.rows != index.rows() || info.dim != index.dim()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the ANN of index ", dir, " is stale: built from manifest ", info.manifest_xxh3, " (",
        info.rows, " rows x ", info.dim, "), the index is now manifest ", manifest_xxh3, " (",
        index.rows(), " rows x ", index.dim(),
        "), e.g. after 'tda index append' or 'delete'; "
        "rebuild it with 'tda index ann --index ",
        dir, " --overwrite'"));
  }
  std::FILE* file = std::fopen(ann_path.c_str(), "rb");
  if (file == nullptr) {
    return absl::DataLossError(
        absl::StrCat(ann_path, " is missing though ", kAnnSidecarFile,
                     " lists it; rebuild it with 'tda index ann --overwrite'"));
  }
  HashingIoReader reader(file);
  std::string parse_error;
  try {
    ann->impl_->index.reset(faiss::read_index(&reader));
  } catch (const faiss::FaissException& e) {
    parse_error = e.what();
  }
  reader.Drain();
  std::fclose(file);
  const std::string checksum = ChecksumHex(reader.digest());
  if (reader.bytes() != info.ann_bytes || checksum != info.ann_xxh3) {
    return absl::DataLossError(
        absl::StrCat(ann_path, ": ", reader.bytes(), " bytes with checksum ", checksum,
                     ", the sidecar says ", info.ann_bytes, " bytes with ", info.ann_xxh3,
                     "; the file is damaged: rebuild it with 'tda index ann --overwrite'"));
  }
  const faiss::Index* loaded = ann->impl_->index.get();
  if (!parse_error.empty() || loaded == nullptr) {
    return absl::DataLossError(
        absl::StrCat(ann_path, ": FAISS cannot read it (", parse_error, ")"));
  }
  if (loaded->ntotal != info.rows || loaded->d != info.dim ||
      loaded->metric_type != faiss::METRIC_INNER_PRODUCT) {
    return absl::DataLossError(absl::StrCat(ann_path, ": holds ", loaded->ntotal, " vectors of ",
                                            loaded->d, " dimensions, the sidecar says ", info.rows,
                                            " x ", info.dim, " (inner product)"));
  }
  return ann;
}

absl::StatusOr<std::vector<std::vector<int64_t>>> AnnIndex::Search(
    const Eigen::MatrixXf& queries, int64_t k, const AnnSearchParameters& parameters) const {
  if (queries.rows() != info_.dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("ANN queries have ", queries.rows(), " dimensions, the ANN ", info_.dim));
  }
  if (k < 1) return absl::InvalidArgumentError("ANN search needs k >= 1");
  k = std::min(k, info_.rows);
  const int64_t q_count = queries.cols();
  std::vector<float> distances(static_cast<size_t>(q_count * k));
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(q_count * k), -1);
  // Eigen's default is column-major: each column (query) is contiguous, as FAISS wants.
  try {
    if (info_.parameters.kind == AnnKind::kHnsw) {
      faiss::SearchParametersHNSW params;
      // HNSW returns at most efSearch results: the list is never shorter than k.
      params.efSearch = static_cast<int>(
          std::max<int64_t>(k, parameters.ef_search > 0 ? parameters.ef_search : 64));
      impl_->index->search(q_count, queries.data(), k, distances.data(), labels.data(), &params);
    } else {
      const int64_t nlist = info_.parameters.nlist;
      faiss::SearchParametersIVF params;
      params.nprobe = static_cast<size_t>(std::min<int64_t>(
          nlist, parameters.nprobe > 0 ? parameters.nprobe : std::max<int64_t>(1, nlist / 16)));
      impl_->index->search(q_count, queries.data(), k, distances.data(), labels.data(), &params);
    }
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("FAISS search failed: ", e.what()));
  }
  std::vector<std::vector<int64_t>> candidates(static_cast<size_t>(q_count));
  for (int64_t q = 0; q < q_count; ++q) {
    for (int64_t j = 0; j < k; ++j) {
      const faiss::Index::idx_t row = labels[q * k + j];
      if (row >= 0 && row < info_.rows) candidates[q].push_back(row);
    }
  }
  return candidates;
}

}  // namespace tda
