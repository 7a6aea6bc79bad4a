// An approximate-nearest-neighbour index over the stored rows of a gradient index, for
// approximate top-k (docs/index_format.md, "ANN files"). tda's score is an inner product,
// preconditioned_query . row, so one inner-product ANN (FAISS, METRIC_INNER_PRODUCT) over the
// raw rows serves every method: only the query side changes per method.
//
// Two files inside the index directory, both written atomically (temp + fsync + rename):
//   ann.faiss  the FAISS index (faiss::write_index), its ids the index's row numbers
//   ann.json   the sidecar: kind, parameters, rows, dim, the XXH3 of the manifest.json it was
//              built from, and the XXH3 and size of ann.faiss
// Open refuses an ANN that does not belong to the index as it is now: kFailedPrecondition when
// the manifest changed since (rows appended or deleted, index rebuilt; "run tda index ann
// --overwrite"), kDataLoss when ann.faiss does not match its sidecar (size, checksum, FAISS
// parse, row or dimension count). Only the ranking is approximate: callers re-score the
// candidates exactly against the stored rows (attribution/approximate_scan.h).
//
// All FAISS code lives in ann_index.cc; FAISS exceptions never leave it (they become a Status).
// Search is thread-safe (FAISS searches are const); Build is not.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/progress.h"
#include "index/gradient_index.h"

namespace tda {

inline constexpr char kAnnFile[] = "ann.faiss";
inline constexpr char kAnnSidecarFile[] = "ann.json";

enum class AnnKind { kIvfFlat, kIvfPq, kHnsw };

// "ivf-flat", "ivf-pq", "hnsw".
const char* AnnKindName(AnnKind kind);
// kInvalidArgument naming the accepted kinds for anything else.
[[nodiscard]] absl::StatusOr<AnnKind> ParseAnnKind(const std::string& name);

// Build parameters; 0 means "the default for this index" (ResolveAnnParameters).
struct AnnParameters {
  AnnKind kind = AnnKind::kIvfFlat;
  int64_t nlist = 0;    // IVF: inverted lists (k-means centroids); default 4 sqrt(rows),
                        // at most rows / 39 (FAISS's minimum of training rows per centroid)
  int64_t pq_m = 0;     // IVF-PQ: sub-quantizers, must divide dim; default the largest
                        // divisor of dim that is <= dim / 2 and <= 64
  int64_t pq_bits = 0;  // IVF-PQ: bits per sub-quantizer code, in [1, 16]; default 8, fewer
                        // when train_rows < 39 x 2^8
  int64_t hnsw_m = 0;   // HNSW: neighbours per node; default 32
  // IVF: rows sampled (evenly spaced) to train the quantizers; default
  // min(rows, max(64 nlist, 10000)) (FAISS warns below 39 per centroid).
  int64_t train_rows = 0;
};

// Fills every 0 of `requested` for an index of `rows` x `dim`; kInvalidArgument (saying what
// to pass instead) for values that cannot work, e.g. nlist > rows or pq_m not dividing dim.
[[nodiscard]] absl::StatusOr<AnnParameters> ResolveAnnParameters(const AnnParameters& requested,
                                                                 int64_t rows, int64_t dim);

// Query-time parameters; 0 means the default.
struct AnnSearchParameters {
  int64_t nprobe = 0;     // IVF: lists probed, clamped to nlist; default max(1, nlist / 16)
  int64_t ef_search = 0;  // HNSW: at least k; default 64 (so max(64, k))
};

// The sidecar's content.
struct AnnInfo {
  AnnParameters parameters;  // resolved
  int64_t rows = 0;          // the index's rows when built (ids are row numbers)
  int64_t dim = 0;
  std::string manifest_xxh3;  // 16 hex digits: XXH3 of manifest.json at build time
  std::string ann_xxh3;       // of ann.faiss
  uint64_t ann_bytes = 0;
};

class AnnIndex {
 public:
  // Builds the ANN of `index` (which must be open) and writes ann.faiss and ann.json into its
  // directory. kAlreadyExists when either file exists and !overwrite (nothing is written);
  // with overwrite they are replaced atomically (ann.faiss first, then the sidecar, so a crash
  // between the two leaves an ANN that Open refuses, never a wrong one). Every row is indexed,
  // deleted ones too (callers skip them when re-scoring). Progress: ("ann train", ...), ("ann add",
  // rows added, rows), ("ann write", ...).
  [[nodiscard]] static absl::StatusOr<AnnInfo> Build(const GradientIndex& index,
                                                     const AnnParameters& parameters,
                                                     bool overwrite,
                                                     const ProgressFn& progress = {});

  // True when the index directory holds an ANN sidecar (whether or not it is valid).
  static bool Exists(const std::string& index_dir);

  // Opens and verifies the ANN of `index` (see the top comment for the errors). kNotFound
  // ("run tda index ann") when the directory has no ANN.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AnnIndex>> Open(const GradientIndex& index);
  ~AnnIndex();

  const AnnInfo& info() const { return info_; }

  // Candidate rows for each query (a column of `queries`, dim x Q): up to k rows each, by
  // descending approximate inner product (FAISS's order), -1 entries dropped. Thread-safe.
  [[nodiscard]] absl::StatusOr<std::vector<std::vector<int64_t>>> Search(
      const Eigen::MatrixXf& queries, int64_t k, const AnnSearchParameters& parameters) const;

 private:
  AnnIndex();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AnnInfo info_;
};

}  // namespace tda
