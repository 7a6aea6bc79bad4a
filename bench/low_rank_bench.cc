// Low-rank query batches (attribution/low_rank_queries.h) against exact scoring, in the same
// run, on a real index (e.g. the 60,000-row Fashion-MNIST demo index; DIR is only read):
//
//   low_rank_bench --index DIR [--batches 64,512] [--ranks 8,16,32] [--singles 64]
//                  [--top-k 10] [--repeats 3] [--candidates 0,1000]
//
// Queries are real test images (fashion-mnist/test/0..), EK-FAC, through
// Attributor::Attribute end to end. Per batch size Q it times
//   - `--singles` single-query Attribute calls (the baseline; for Q above it, the baseline is
//     scaled by Q / singles and marked "est."),
//   - one exact Q-query Attribute call,
//   - one low-rank Q-query call per rank and --candidates value (0, the default: 10 x top-k),
// and prints each time's ratio to the Q single queries, the split between the query
// gradients (PrepareQueries: gradient, projection, preconditioning) and the scoring
// (ScoreQueries) and, for low rank, of the scoring (basis, scan, candidates + re-scoring), the
// top-k recall (proponents and opponents, averaged over queries) against the exact batch, and
// the share of the batch's squared norm its top r directions hold. Batch times are the best of
// --repeats runs.
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attribution/attributor.h"
#include "attribution/low_rank_queries.h"
#include "model/model.h"

namespace tda {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "low_rank_bench: %s\n", message.c_str());
  std::exit(1);
}

std::vector<Query> TestQueries(int64_t first, int64_t n) {
  std::vector<Query> queries;
  for (int64_t i = first; i < first + n; ++i) {
    queries.push_back({absl::StrCat("fashion-mnist/test/", i), {}, -1, {}});
  }
  return queries;
}

// One batch call, timed in its two halves.
struct Timed {
  double prepare = 0, score = 0;
  double total() const { return prepare + score; }
  std::vector<QueryResult> results;
};

Timed RunBatch(const Attributor& attributor, const std::vector<Query>& queries,
               const AttributeOptions& options, int repeats) {
  Timed best;
  for (int r = 0; r < repeats; ++r) {
    Timed run;
    auto started = std::chrono::steady_clock::now();
    absl::StatusOr<Attributor::PreparedQueries> prepared =
        attributor.PrepareQueries(queries, options);
    if (!prepared.ok()) Die(std::string(prepared.status().message()));
    run.prepare = Seconds(started);
    started = std::chrono::steady_clock::now();
    if (absl::Status s =
            attributor.ScoreQueries(prepared->preconditioned, options, &prepared->results);
        !s.ok()) {
      Die(std::string(s.message()));
    }
    run.score = Seconds(started);
    run.results = std::move(prepared->results);
    if (r == 0 || run.total() < best.total()) best = std::move(run);
  }
  return best;
}

// The scoring of a low-rank call in its parts: the basis, the scan with it, and the rest
// (approximate scores, candidates, exact re-scoring), each timed once after the call ran.
void PrintLowRankSplit(const Attributor& attributor, const std::vector<Query>& queries,
                       const AttributeOptions& options) {
  absl::StatusOr<Attributor::PreparedQueries> prepared =
      attributor.PrepareQueries(queries, options);
  if (!prepared.ok()) Die(std::string(prepared.status().message()));
  auto started = std::chrono::steady_clock::now();
  const QueryBasis basis = LowRankQueryBasis(prepared->preconditioned, options.low_rank.rank);
  const double basis_seconds = Seconds(started);
  started = std::chrono::steady_clock::now();
  ScanOptions scan;
  scan.keep_scores = true;
  const ScanResult projections = attributor.index().Scan(basis.basis, scan);
  const double scan_seconds = Seconds(started);
  started = std::chrono::steady_clock::now();
  absl::StatusOr<ApproximateTopK> top =
      LowRankTopK(attributor.index(), prepared->preconditioned, options.top_k, options.low_rank,
                  Cancellation());
  if (!top.ok()) Die(std::string(top.status().message()));
  const double all_seconds = Seconds(started);
  std::printf("    scoring split: basis %.3f s, scan with %lld vectors %.3f s, the rest %.3f s\n",
              basis_seconds, static_cast<long long>(projections.scores.cols()), scan_seconds,
              std::max(0.0, all_seconds - basis_seconds - scan_seconds));
}

// The share of the batch's squared norm (sum of squared singular values; queries scaled to
// unit norm, as the basis weighs them) that its top r directions hold, for each rank: how
// low-rank the preconditioned queries are.
void PrintEnergyShares(const Attributor& attributor, const std::vector<Query>& queries,
                       const AttributeOptions& options, const std::vector<int64_t>& ranks) {
  absl::StatusOr<Attributor::PreparedQueries> prepared =
      attributor.PrepareQueries(queries, options);
  if (!prepared.ok()) Die(std::string(prepared.status().message()));
  // Columns of unit norm, as LowRankQueryBasis weighs them.
  const Eigen::MatrixXd v = prepared->preconditioned.colwise().normalized();
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(v.transpose() * v);
  const Eigen::VectorXd& values = eigen.eigenvalues();  // ascending
  std::printf("  share of the unit queries' squared norm in the top r directions:");
  for (const int64_t rank : ranks) {
    const int64_t r = std::min<int64_t>(rank, values.size());
    std::printf(" r=%lld %.3f", static_cast<long long>(rank),
                values.tail(r).sum() / std::max(1e-300, values.sum()));
  }
  std::printf("\n");
}

double Recall(const std::vector<QueryResult>& found, const std::vector<QueryResult>& exact) {
  double sum = 0;
  int64_t lists = 0;
  auto add = [&](const std::vector<Hit>& f, const std::vector<Hit>& e) {
    if (e.empty()) return;
    std::set<int64_t> rows;
    for (const Hit& h : f) rows.insert(h.row);
    int64_t hits = 0;
    for (const Hit& h : e) hits += static_cast<int64_t>(rows.count(h.row));
    sum += static_cast<double>(hits) / static_cast<double>(e.size());
    ++lists;
  };
  for (size_t q = 0; q < exact.size(); ++q) {
    add(found[q].proponents, exact[q].proponents);
    add(found[q].opponents, exact[q].opponents);
  }
  return lists > 0 ? sum / static_cast<double>(lists) : 1.0;
}

std::vector<int64_t> ParseList(const std::string& flag, const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < 1) {
      Die(absl::StrCat(flag, ": '", text, "' is not a list of positive integers"));
    }
    out.push_back(value);
  }
  return out;
}

int Main(int argc, char** argv) {
  std::string index_dir;
  std::vector<int64_t> batches = {64, 512}, ranks = {8, 16, 32}, candidates = {0};
  int64_t singles = 64, top_k = 10, repeats = 3;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--help" || i + 1 >= argc) {
      std::printf(
          "usage: low_rank_bench --index DIR [--batches 64,512] [--ranks 8,16,32] "
          "[--singles 64] [--top-k 10] [--repeats 3] [--candidates 0,...]\n");
      return flag == "--help" ? 0 : 2;
    }
    const std::string value = argv[i + 1];
    if (flag == "--index") {
      index_dir = value;
    } else if (flag == "--batches") {
      batches = ParseList(flag, value);
    } else if (flag == "--ranks") {
      ranks = ParseList(flag, value);
    } else if (flag == "--candidates") {
      candidates.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int64_t c = 0;
        if (!absl::SimpleAtoi(part, &c) || c < 0) Die("--candidates: a list of integers >= 0");
        candidates.push_back(c);
      }
    } else if (flag == "--singles" || flag == "--top-k" || flag == "--repeats") {
      int64_t* target = flag == "--singles" ? &singles : flag == "--top-k" ? &top_k : &repeats;
      *target = ParseList(flag, value)[0];
    } else {
      Die(absl::StrCat("unknown flag ", flag, " (--help)"));
    }
  }
  if (index_dir.empty()) Die("give --index DIR (--help)");
  InitCompute();
  absl::StatusOr<std::unique_ptr<Attributor>> opened =
      Attributor::Open(index_dir, GradientIndex::Verify::kSizes);
  if (!opened.ok()) Die(std::string(opened.status().message()));
  const Attributor& attributor = **opened;
  std::printf(
      "index %s: %lld rows x %lld dims %s; EK-FAC queries fashion-mnist/test/0.., top %lld\n",
      index_dir.c_str(), static_cast<long long>(attributor.index().rows()),
      static_cast<long long>(attributor.index().dim()), RowDTypeName(attributor.index().dtype()),
      static_cast<long long>(top_k));
  AttributeOptions exact;
  exact.top_k = top_k;
  // Warm-up: the rows into the page cache, the model's first call.
  RunBatch(attributor, TestQueries(0, 8), exact, 1);

  double single_seconds = 0;
  auto started = std::chrono::steady_clock::now();
  for (const Query& query : TestQueries(0, singles)) {
    absl::StatusOr<std::vector<QueryResult>> one = attributor.Attribute({query}, exact);
    if (!one.ok()) Die(std::string(one.status().message()));
  }
  single_seconds = Seconds(started);
  std::printf("%lld single-query calls: %.2f s (%.1f ms each)\n\n", static_cast<long long>(singles),
              single_seconds, 1e3 * single_seconds / singles);

  for (const int64_t q_count : batches) {
    const std::vector<Query> queries = TestQueries(0, q_count);
    const double baseline = single_seconds * static_cast<double>(q_count) / singles;
    const char* estimated = q_count == singles ? "" : " (est.)";
    std::printf("%lld queries; baseline %lld single calls %.2f s%s\n",
                static_cast<long long>(q_count), static_cast<long long>(q_count), baseline,
                estimated);
    std::printf("  %-22s %9s %9s %9s %10s %8s\n", "", "total s", "grads s", "score s", "x singles",
                "recall");
    const Timed exact_batch = RunBatch(attributor, queries, exact, static_cast<int>(repeats));
    auto print = [&](const std::string& name, const Timed& t, double recall) {
      std::printf("  %-22s %9.3f %9.3f %9.3f %10.4f %8.3f\n", name.c_str(), t.total(), t.prepare,
                  t.score, t.total() / baseline, recall);
    };
    print("exact batch", exact_batch, 1.0);
    PrintEnergyShares(attributor, queries, exact, ranks);
    for (const int64_t c : candidates) {
      for (const int64_t rank : ranks) {
        AttributeOptions low_rank = exact;
        low_rank.low_rank = {rank, c};
        if (!LowRankPays(q_count, rank)) {
          std::printf("  rank %lld: not below %lld queries (the exact batch answers)\n",
                      static_cast<long long>(rank), static_cast<long long>(q_count));
          continue;
        }
        const Timed t = RunBatch(attributor, queries, low_rank, static_cast<int>(repeats));
        print(absl::StrCat("rank ", rank, ", ", c > 0 ? c : 10 * top_k, " cand."), t,
              Recall(t.results, exact_batch.results));
        PrintLowRankSplit(attributor, queries, low_rank);
      }
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace
}  // namespace tda

int main(int argc, char** argv) { return tda::Main(argc, argv); }
