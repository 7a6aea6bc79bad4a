// tda index ann: builds the inner-product ANN of a gradient index for approximate top-k
// ('tda query --approximate', AttributeRequest.approximate).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/ann_flags.h"
#include "client/commands.h"
#include "client/json_string.h"
#include "client/progress_bar.h"
#include "model/model.h"

namespace tda {

void AddAnnParameterFlags(FlagParser& flags) {
  flags.AddInt("nlist", "N", 0, "IVF kinds: inverted lists (0: 4 x sqrt(rows), at most rows / 39)");
  flags.AddInt("m", "M", 0,
               "ivf-pq: sub-quantizers, must divide the index's dims (0: the largest divisor "
               "<= min(64, dims / 2))");
  flags.AddInt("pq-bits", "B", 0,
               "ivf-pq: bits per sub-quantizer code, 1..16 (0: 8, fewer for small indexes)");
  flags.AddInt("hnsw-m", "M", 0, "hnsw: neighbours per node (0: 32)");
  flags.AddInt("train-rows", "N", 0,
               "IVF kinds: rows sampled to train the quantizers (0: max(64 x nlist, 10000), at "
               "most all)");
}

absl::StatusOr<AnnParameters> AnnParametersFromFlags(const FlagParser& flags,
                                                     const std::string& kind) {
  AnnParameters parameters;
  absl::StatusOr<AnnKind> parsed = ParseAnnKind(kind);
  if (!parsed.ok()) return parsed.status();
  parameters.kind = *parsed;
  parameters.nlist = flags.GetInt("nlist");
  parameters.pq_m = flags.GetInt("m");
  parameters.pq_bits = flags.GetInt("pq-bits");
  parameters.hnsw_m = flags.GetInt("hnsw-m");
  parameters.train_rows = flags.GetInt("train-rows");
  if (parameters.nlist < 0 || parameters.pq_m < 0 || parameters.pq_bits < 0 ||
      parameters.hnsw_m < 0 || parameters.train_rows < 0) {
    return absl::InvalidArgumentError(
        "--nlist, --m, --pq-bits, --hnsw-m and --train-rows must be >= 0 (0: the default)");
  }
  return parameters;
}

absl::StatusOr<AnnInfo> BuildAnnWithProgress(const GradientIndex& index,
                                             const AnnParameters& parameters, bool overwrite) {
  ProgressBar bar;
  return AnnIndex::Build(index, parameters, overwrite, bar.Callback());
}

std::string AnnSummary(const std::string& index_dir, const AnnInfo& info) {
  const AnnParameters& p = info.parameters;
  const std::string shape =
      p.kind == AnnKind::kHnsw ? absl::StrCat("M ", p.hnsw_m)
      : p.kind == AnnKind::kIvfPq
          ? absl::StrCat("nlist ", p.nlist, ", m ", p.pq_m, ", ", p.pq_bits, " bits")
          : absl::StrCat("nlist ", p.nlist);
  return absl::StrFormat("ANN %s (%s) written to %s/%s: %d rows x %d dims, %.1f MiB",
                         AnnKindName(p.kind), shape, index_dir, kAnnFile, info.rows, info.dim,
                         static_cast<double>(info.ann_bytes) / (1 << 20));
}

int RunIndexAnn(const Args& args) {
  FlagParser flags(
      "tda index ann", "--index DIR --kind ivf-flat|ivf-pq|hnsw [options]",
      "Builds an inner-product ANN (FAISS) over the stored rows of a gradient index and writes\n"
      "it beside them (ann.faiss and its sidecar ann.json, atomically), for approximate top-k:\n"
      "'tda query --approximate' and AttributeRequest.approximate. Every method is served by\n"
      "the one ANN (a score is preconditioned query . row); hits are re-scored exactly, so\n"
      "their scores are exact and only a missed row is an error of the ranking. The ANN is\n"
      "tied to the index as it is now: after 'tda index append' or 'delete' it is refused\n"
      "until rebuilt with --overwrite.");
  flags.AddRequiredString("index", "DIR", "index directory written by 'tda index build'");
  flags.AddString("kind", "KIND", "ivf-flat",
                  "ivf-flat (exact vectors in k-means lists), ivf-pq (product-quantized codes: "
                  "small, less accurate) or hnsw (graph: fast, no training, the largest)");
  AddAnnParameterFlags(flags);
  flags.AddBool("overwrite", "replace an ANN this index already has");
  flags.AddBool("json", "print the sidecar (kind, parameters, rows, dims, checksums) as JSON");
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
  flags.AddNote(
      "Example:\n  tda index ann --index fmnist-index --kind hnsw\n"
      "  tda query --index fmnist-index --id fashion-mnist/test/12 --approximate");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  absl::StatusOr<AnnParameters> parameters = AnnParametersFromFlags(flags, flags.GetString("kind"));
  if (!parameters.ok()) return flags.UsageError(std::string(parameters.status().message()));
  if (flags.GetInt("threads") < 0) return flags.UsageError("--threads must be >= 0");
  InitCompute(static_cast<int>(flags.GetInt("threads")));
  const std::string dir = flags.GetString("index");

  // Full verification: the ANN is built from rows whose checksums were just read.
  absl::StatusOr<std::unique_ptr<GradientIndex>> index =
      GradientIndex::Open(dir, GradientIndex::Verify::kFull);
  if (!index.ok()) return RuntimeError(index.status());
  absl::StatusOr<AnnInfo> info =
      BuildAnnWithProgress(**index, *parameters, flags.GetBool("overwrite"));
  if (!info.ok()) return RuntimeError(info.status());
  if (flags.GetBool("json")) {
    const AnnParameters& p = info->parameters;
    std::cout << absl::StrCat(
        "{\"index\": ", JsonString(dir), ", \"kind\": ", JsonString(AnnKindName(p.kind)),
        ", \"nlist\": ", p.nlist, ", \"m\": ", p.pq_m, ", \"pq_bits\": ", p.pq_bits,
        ", \"hnsw_m\": ", p.hnsw_m, ", \"train_rows\": ", p.train_rows, ", \"rows\": ", info->rows,
        ", \"dim\": ", info->dim, ", \"bytes\": ", info->ann_bytes,
        ", \"xxh3\": ", JsonString(info->ann_xxh3),
        ", \"manifest_xxh3\": ", JsonString(info->manifest_xxh3), "}\n");
  } else {
    std::cout << AnnSummary(dir, *info) << "\n";
  }
  return 0;
}

}  // namespace tda
