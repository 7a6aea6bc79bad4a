// tda index build: fits EK-FAC factors and writes the gradient index of a trained model.
#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/ann_flags.h"
#include "client/commands.h"
#include "client/progress_bar.h"
#include "common/flags.h"
#include "distributed/world.h"
#include "index/ensemble_manifest.h"
#include "index/gradient_index.h"
#include "model/model.h"
#include "ops/build_model_index.h"

namespace tda {

int RunIndexBuild(const Args& args) {
  FlagParser flags(
      "tda index build", "--model DIR --out DIR [options]",
      "Builds the gradient index of a model trained by 'tda train': fits the EK-FAC curvature\n"
      "factors, then writes the projected per-sample gradient of every training image (gpt\n"
      "models: every training fortune, its loss summed over its bytes), with\n"
      "the model and the factors, to the index directory that tda-server and\n"
      "'tda query --index' read.\n"
      "\n"
      "Data-parallel: started by torchrun (or with RANK, WORLD_SIZE, MASTER_ADDR and\n"
      "MASTER_PORT set, as a Kubernetes Indexed Job does), each rank fits the factors on its\n"
      "slice of the batches (sums all-reduced over c10d Gloo) and writes its slice of the rows;\n"
      "rank 0 writes the manifest once every rank has reported its files. Same rows as one\n"
      "process; a rank that fails leaves no index. Every rank must see --out (a shared disk):\n"
      "  torchrun --no_python --nproc_per_node 2 --redirects 2 --tee 2 \\\n"
      "      tda index build --model M --out IDX");
  flags.AddRequiredString("model", "DIR", "model directory written by 'tda train'");
  flags.AddRequiredString("out", "DIR",
                          "index directory to write (an old index there is replaced)");
  flags.AddInt("projection-dim", "K", 32,
               "random projection to K x K per layer (K per side of each layer's gradient); "
               "0 = exact gradients");
  flags.AddInt("train-size", "N", -1,
               "index the first N training samples (default: those the model was trained on)");
  flags.AddString("fisher", "true|empirical", "true",
                  "labels for the curvature: sampled from the model (true) or the data's own");
  flags.AddInt("factor-examples", "N", 100000,
               "training samples used to fit the factors (at most), in capture windows (one "
               "batch of images, 8 batches of documents) spread evenly over the data; a "
               "multiple of the window keeps the build at two passes");
  flags.AddInt("batch-size", "N", 0,
               "samples per gradient batch (0 = 512 images or 32 documents)");
  flags.AddString("dtype", "f32|bf16|f16", "f32",
                  "how gradient rows are stored: f32, or bf16 / f16 (half the bytes, rounded to "
                  "nearest even)");
  flags.AddBool("adam-correction",
                "TrackStar: divide every gradient by sqrt(v_hat) + eps of the model's saved Adam "
                "state before projection (exact with --projection-dim 0, else a rank-1 factor "
                "per layer); needs a model trained with Adam or AdamW");
  flags.AddInt("seed", "N", 0, "seed of the projection and of the Fisher label sampling");
  flags.AddString("data-dir", "DIR", "",
                  "training data: Fashion-MNIST IDX files, the fortunes, or JSONL files "
                  "(default: the model's)");
  flags.AddBool("allow-changed-corpus",
                "index a JSONL corpus even though it changed since the model was trained");
  flags.AddString("cache-dir", "DIR", "",
                  "token cache of JSONL corpora (default: $TDA_CACHE_DIR, else "
                  "$XDG_CACHE_HOME/tda, else ~/.cache/tda)");
  flags.AddInt("threads", "N", 0, "compute threads (0 = OMP_NUM_THREADS or all cores)");
  flags.AddString("ann", "KIND", "",
                  "also build the ANN for approximate top-k (ivf-flat, ivf-pq or hnsw), as "
                  "'tda index ann' does; it replaces an ANN of the old index there");
  AddAnnParameterFlags(flags);
  flags.AddInt("ensemble", "E", 1,
               "an ensemble index of E models (TRAK's lever; scores are the members' mean): this "
               "model, the --ensemble-models, then models trained now by this model's recipe with "
               "seeds seed+1, seed+2, ...; each member is an index in OUT/member-<k>");
  flags.AddString("ensemble-models", "DIR[,DIR...]", "",
                  "with --ensemble: members 1.. are these models (e.g. other seeds or checkpoints "
                  "of one run, trained on the same data) instead of training them");
  flags.AddDouble("rendezvous-timeout", "SECONDS", 1800,
                  "data-parallel builds: how long a rank waits for the others (to join, and at "
                  "each all-reduce)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  std::optional<AnnParameters> ann_parameters;
  if (flags.IsSet("ann")) {
    absl::StatusOr<AnnParameters> parsed = AnnParametersFromFlags(flags, flags.GetString("ann"));
    if (!parsed.ok()) return flags.UsageError(std::string(parsed.status().message()));
    ann_parameters = *parsed;
  }

  ModelIndexRequest request;
  IndexBuildOptions& options = request.index;
  options.model_dir = flags.GetString("model");
  options.out_dir = flags.GetString("out");
  options.projection_dim_per_side = flags.GetInt("projection-dim");
  options.projection_seed = static_cast<uint64_t>(flags.GetInt("seed"));
  options.adam_correction = flags.GetBool("adam-correction");
  options.fit.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  options.fit.max_examples = flags.GetInt("factor-examples");
  options.batch_size = flags.GetInt("batch-size");
  options.fit.batch_size = options.batch_size;  // 0: the build picks both
  request.data_dir = flags.GetString("data-dir");
  request.train_size = flags.GetInt("train-size");
  request.allow_changed_corpus = flags.GetBool("allow-changed-corpus");
  request.cache_dir = flags.GetString("cache-dir");
  request.ensemble = flags.GetInt("ensemble");
  if (!flags.GetString("ensemble-models").empty()) {
    std::vector<std::string> models = absl::StrSplit(flags.GetString("ensemble-models"), ',');
    request.member_models = std::move(models);
  }
  if (request.ensemble < 1 || request.ensemble > kMaxIndexEnsembleMembers) {
    return flags.UsageError(
        absl::StrFormat("--ensemble must be in [1, %d]", kMaxIndexEnsembleMembers));
  }
  if (static_cast<int64_t>(request.member_models.size()) >= request.ensemble) {
    return flags.UsageError(absl::StrFormat(
        "--ensemble-models names %d models: give --ensemble %d or more (member 0 is --model)",
        request.member_models.size(), request.member_models.size() + 1));
  }
  if (request.ensemble > 1 && ann_parameters.has_value()) {
    return flags.UsageError("--ann ranks one index's rows: not with --ensemble");
  }
  const std::string fisher = flags.GetString("fisher");
  absl::StatusOr<RowDType> dtype = ParseRowDType(flags.GetString("dtype"));
  if (!dtype.ok()) return flags.UsageError("--dtype must be f32, bf16 or f16");
  options.dtype = *dtype;
  absl::StatusOr<FisherKind> fisher_kind = ParseFisherKind(fisher);
  if (!fisher_kind.ok()) return flags.UsageError(std::string(fisher_kind.status().message()));
  options.fit.fisher = *fisher_kind;
  if (options.projection_dim_per_side < 0) return flags.UsageError("--projection-dim must be >= 0");
  if (options.fit.max_examples <= 0 || options.batch_size < 0) {
    return flags.UsageError("--factor-examples must be > 0 and --batch-size >= 0");
  }
  if (flags.GetInt("threads") < 0) return flags.UsageError("--threads must be >= 0");
  InitCompute(static_cast<int>(flags.GetInt("threads")));
  absl::StatusOr<std::optional<WorldEnvironment>> world = ReadWorldEnvironment();
  if (!world.ok()) return flags.UsageError(std::string(world.status().message()));
  std::unique_ptr<Collective> collective;
  if (world->has_value()) {
    const WorldEnvironment& env = **world;
    std::cerr << absl::StrFormat("rank %d of %d: joining %s:%d\n", env.rank, env.world_size,
                                 env.master_addr, env.master_port);
    absl::StatusOr<std::unique_ptr<Collective>> joined =
        JoinWorld(env, flags.GetDouble("rendezvous-timeout"));
    if (!joined.ok()) return RuntimeError(joined.status());
    collective = std::move(*joined);
    request.collective = collective.get();
  }
  const bool primary = collective == nullptr || collective->rank() == 0;

  absl::StatusOr<ModelIndexPlan> built;
  {
    ProgressBar bar;  // rank 0's progress only
    built = BuildModelIndex(
        request, primary ? bar.Callback() : ProgressFn(), [&](const ModelIndexPlan& plan) {
          if (!primary) return;
          if (plan.members > 1) {
            std::cerr << absl::StrFormat("ensemble member %d of %d: ", plan.member + 1,
                                         plan.members);
          }
          std::cerr << absl::StrFormat(
              "indexing %d training %s (projection %d per side, %s Fisher, %s rows)\n", plan.rows,
              !plan.documents         ? std::string("images")
              : plan.chunk_stride > 0 ? absl::StrFormat("rows (documents chunked: windows of %d "
                                                        "bytes, %d apart)",
                                                        plan.context_length, plan.chunk_stride)
                                      : absl::StrFormat("documents (%d truncated at the context of "
                                                        "%d bytes)",
                                                        plan.truncated, plan.context_length),
              options.projection_dim_per_side, fisher, RowDTypeName(options.dtype));
        });
  }
  if (!built.ok()) return RuntimeError(built.status());
  if (!primary) {
    std::cout << absl::StrFormat("rank %d: rows written to %s\n", collective->rank(),
                                 options.out_dir);
    return 0;
  }
  const bool ensemble = request.ensemble > 1;
  absl::StatusOr<std::unique_ptr<GradientIndex>> index =
      GradientIndex::Open(ensemble ? EnsembleMemberDir(options.out_dir, 0) : options.out_dir,
                          GradientIndex::Verify::kSizes);
  if (!index.ok()) return RuntimeError(index.status());
  std::cout << absl::StrFormat(
      "%s written to %s: %d rows x %d dims (%.1f MiB)\n",
      ensemble ? absl::StrFormat("ensemble index of %d models", request.ensemble) : "index",
      options.out_dir, (*index)->rows(), (*index)->dim() * request.ensemble,
      static_cast<double>(RowDTypeBytes((*index)->dtype())) * (*index)->rows() * (*index)->dim() *
          request.ensemble / (1 << 20));
  if (ann_parameters.has_value()) {
    // The old index was replaced, so an ANN of it is stale: replacing it loses nothing.
    absl::StatusOr<AnnInfo> ann = BuildAnnWithProgress(**index, *ann_parameters, true);
    if (!ann.ok()) return RuntimeError(ann.status());
    std::cout << AnnSummary(options.out_dir, *ann) << "\n";
  }
  return 0;
}

}  // namespace tda
