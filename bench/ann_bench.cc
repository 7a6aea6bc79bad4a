// Approximate top-k (FAISS ANN + exact re-scoring) against the exact scan, in the same run:
// recall@10 and recall@100 (of proponents and opponents, averaged over queries) and the
// speed-up (exact time / approximate time, one query per call, the same queries).
//
//   ann_bench --index DIR [--queries 100] [--kinds ivf-flat,ivf-pq,hnsw]
//     a real index (e.g. the 60,000-row Fashion-MNIST demo index): queries are real test
//     images (fashion-mnist/test/<i>), EK-FAC, through Attributor::Attribute end to end
//     (gradient, preconditioning, then the exact scan or the ANN search + re-scoring). The
//     index is copied to a temporary directory first; DIR is only read.
//   ann_bench --rows N [--dim 128] [--dtype bf16] [--queries 100] [--kinds ...]
//     (--nlist N, --train-rows N: the IVF kinds' build parameters instead of the defaults)
//     a generated index: rows from a Gaussian mixture (256 centres ~ N(0, I), each row a
//     centre + 0.5 N(0, I)); queries are mixture samples scaled by a fixed log-normal diagonal
//     (exp N(0, 1) per dimension), standing in for a preconditioner, so that queries are not
//     distributed like the rows. Exact: GradientIndex::Scan as a query runs it (top-k heaps
//     and per-source sums); approximate: ApproximateScan.
// Each kind's ANN is built with its defaults (ResolveAnnParameters) and searched with a few
// nprobe / ef_search values; candidates are the default 10 x top_k.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attribution/approximate_scan.h"
#include "attribution/attributor.h"
#include "index/ann_index.h"
#include "index/gradient_index.h"
#include "model/model.h"
#include "synthetic_index.h"

namespace tda {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "ann_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

// Per query: the rows of the proponents and of the opponents.
struct TopRows {
  std::vector<std::vector<int64_t>> proponents, opponents;
};

// Runs every query once (one per call) with `top_k`, exactly or with `approximate`.
using Runner = std::function<TopRows(int64_t top_k, const ApproximateSearch& approximate)>;

double Recall(const TopRows& approximate, const TopRows& exact) {
  double sum = 0;
  int64_t lists = 0;
  auto add = [&](const std::vector<int64_t>& a, const std::vector<int64_t>& e) {
    if (e.empty()) return;
    const std::set<int64_t> found(a.begin(), a.end());
    int64_t hits = 0;
    for (int64_t row : e) hits += found.count(row);
    sum += static_cast<double>(hits) / static_cast<double>(e.size());
    ++lists;
  };
  for (size_t q = 0; q < exact.proponents.size(); ++q) {
    add(approximate.proponents[q], exact.proponents[q]);
    add(approximate.opponents[q], exact.opponents[q]);
  }
  return lists > 0 ? sum / static_cast<double>(lists) : 1.0;
}

template <typename Hits>
std::vector<int64_t> RowsOf(const Hits& hits) {
  std::vector<int64_t> rows;
  for (const auto& h : hits) rows.push_back(h.row);
  return rows;
}

// What the bench compares: an index directory and how to run queries against it. The ANN
// is rebuilt into `dir` per kind; `reopen` is called after each build.
struct Subject {
  std::string dir;
  std::function<void()> reopen;
  Runner run;
};

Subject RealIndex(const std::string& source, const std::string& dir, int64_t queries) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(source)) {
    const std::string name = entry.path().filename().string();
    if (name == kAnnFile || name == kAnnSidecarFile) continue;
    std::filesystem::copy(entry.path(), dir + "/" + name, std::filesystem::copy_options::recursive);
  }
  auto attributor = std::make_shared<std::unique_ptr<Attributor>>();
  Subject subject;
  subject.dir = dir;
  subject.reopen = [attributor, dir] {
    absl::StatusOr<std::unique_ptr<Attributor>> opened =
        Attributor::Open(dir, GradientIndex::Verify::kSizes);
    if (!opened.ok()) Die(opened.status());
    *attributor = std::move(*opened);
  };
  subject.reopen();
  std::printf(
      "index %s: %lld rows x %lld dims %s; %lld EK-FAC queries (fashion-mnist/test/0..), "
      "end to end through Attributor::Attribute\n",
      source.c_str(), static_cast<long long>((*attributor)->index().rows()),
      static_cast<long long>((*attributor)->index().dim()),
      RowDTypeName((*attributor)->index().dtype()), static_cast<long long>(queries));
  subject.run = [attributor, queries](int64_t top_k, const ApproximateSearch& approximate) {
    TopRows out;
    AttributeOptions options;
    options.top_k = top_k;
    options.approximate = approximate;
    for (int64_t q = 0; q < queries; ++q) {
      absl::StatusOr<std::vector<QueryResult>> results =
          (*attributor)
              ->Attribute({Query{absl::StrCat("fashion-mnist/test/", q), {}, -1, {}}}, options);
      if (!results.ok()) Die(results.status());
      out.proponents.push_back(RowsOf((*results)[0].proponents));
      out.opponents.push_back(RowsOf((*results)[0].opponents));
    }
    return out;
  };
  return subject;
}

Subject GeneratedIndex(const std::string& dir, int64_t rows, int64_t dim, RowDType dtype,
                       int64_t queries) {
  constexpr int kCentres = 256;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  Eigen::MatrixXf centres(dim, kCentres);
  for (Eigen::Index i = 0; i < centres.size(); ++i) centres.data()[i] = normal(rng);
  const auto started = std::chrono::steady_clock::now();
  absl::Status written =
      bench::WriteSyntheticIndex(dir, rows, dim, dtype, [&](int64_t, int64_t count, float* out) {
        std::uniform_int_distribution<int> centre(0, kCentres - 1);
        for (int64_t r = 0; r < count; ++r) {
          const int c = centre(rng);
          for (int64_t d = 0; d < dim; ++d) out[r * dim + d] = centres(d, c) + 0.5f * normal(rng);
        }
      });
  if (!written.ok()) Die(written);
  Eigen::VectorXf scale(dim);
  for (int64_t d = 0; d < dim; ++d) scale[d] = std::exp(normal(rng));
  auto query_vectors = std::make_shared<Eigen::MatrixXf>(dim, queries);
  std::uniform_int_distribution<int> centre(0, kCentres - 1);
  for (int64_t q = 0; q < queries; ++q) {
    const int c = centre(rng);
    for (int64_t d = 0; d < dim; ++d) {
      (*query_vectors)(d, q) = scale[d] * (centres(d, c) + 0.5f * normal(rng));
    }
  }
  auto index = std::make_shared<std::unique_ptr<GradientIndex>>();
  auto ann = std::make_shared<std::unique_ptr<AnnIndex>>();
  absl::StatusOr<std::unique_ptr<GradientIndex>> opened =
      GradientIndex::Open(dir, GradientIndex::Verify::kSizes);
  if (!opened.ok()) Die(opened.status());
  *index = std::move(*opened);
  std::printf(
      "generated index: %lld rows x %lld dims %s (Gaussian mixture of %d centres, written "
      "in %.0f s); %lld queries (mixture samples x a log-normal diagonal)\n",
      static_cast<long long>(rows), static_cast<long long>(dim), RowDTypeName(dtype), kCentres,
      Seconds(started), static_cast<long long>(queries));
  Subject subject;
  subject.dir = dir;
  subject.reopen = [index, ann] {
    absl::StatusOr<std::unique_ptr<AnnIndex>> loaded = AnnIndex::Open(**index);
    if (!loaded.ok()) Die(loaded.status());
    *ann = std::move(*loaded);
  };
  subject.run = [index, ann, query_vectors](int64_t top_k, const ApproximateSearch& approximate) {
    TopRows out;
    for (Eigen::Index q = 0; q < query_vectors->cols(); ++q) {
      const Eigen::MatrixXf query = query_vectors->col(q);
      if (approximate.enabled) {
        absl::StatusOr<ApproximateTopK> top =
            ApproximateScan(**index, **ann, query, top_k, approximate);
        if (!top.ok()) Die(top.status());
        out.proponents.push_back(RowsOf(top->proponents[0]));
        out.opponents.push_back(RowsOf(top->opponents[0]));
      } else {
        ScanOptions options;  // what an exact query runs
        options.top_k = top_k;
        options.source_sums = true;
        ScanResult scan = (*index)->Scan(query, options);
        out.proponents.push_back(RowsOf(scan.proponents[0]));
        out.opponents.push_back(RowsOf(scan.opponents[0]));
      }
    }
    return out;
  };
  return subject;
}

// Timed: the runner's result and its seconds per query.
TopRows Timed(const Runner& run, int64_t top_k, const ApproximateSearch& approximate,
              int64_t queries, double* seconds_per_query) {
  const auto started = std::chrono::steady_clock::now();
  TopRows rows = run(top_k, approximate);
  *seconds_per_query = Seconds(started) / static_cast<double>(queries);
  return rows;
}

int Main(int argc, char** argv) {
  std::string index_dir, kinds = "ivf-flat,ivf-pq,hnsw";
  int64_t rows = 0, dim = 128, queries = 100, nlist = 0, train_rows = 0;
  RowDType dtype = RowDType::kBF16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--index") {
      index_dir = value;
    } else if (flag == "--rows") {
      rows = std::atoll(value.c_str());
    } else if (flag == "--dim") {
      dim = std::atoll(value.c_str());
    } else if (flag == "--queries") {
      queries = std::atoll(value.c_str());
    } else if (flag == "--kinds") {
      kinds = value;
    } else if (flag == "--nlist") {
      nlist = std::atoll(value.c_str());
    } else if (flag == "--train-rows") {
      train_rows = std::atoll(value.c_str());
    } else if (flag == "--dtype") {
      absl::StatusOr<RowDType> parsed = ParseRowDType(value);
      if (!parsed.ok()) Die(parsed.status());
      dtype = *parsed;
    } else {
      std::fprintf(stderr, "ann_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (index_dir.empty() == (rows <= 0) || queries < 1) {
    std::fprintf(stderr,
                 "usage: ann_bench (--index DIR | --rows N [--dim D] [--dtype T]) "
                 "[--queries Q] [--kinds ivf-flat,ivf-pq,hnsw] [--nlist N] [--train-rows N]\n");
    return 2;
  }
  InitCompute();
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("tda-ann-bench-", ::getpid()))
          .string();
  Subject subject = index_dir.empty() ? GeneratedIndex(dir, rows, dim, dtype, queries)
                                      : RealIndex(index_dir, dir, queries);
  const ApproximateSearch exact_search;  // disabled
  double exact10 = 0, exact100 = 0;
  subject.run(10, exact_search);  // warm up: page the rows in
  const TopRows truth10 = Timed(subject.run, 10, exact_search, queries, &exact10);
  const TopRows truth100 = Timed(subject.run, 100, exact_search, queries, &exact100);
  std::printf("exact scan: %.2f ms/query (top 10), %.2f ms/query (top 100)\n\n", exact10 * 1e3,
              exact100 * 1e3);
  std::printf(
      "| ANN | built in | file | search | recall@10 | speed-up (top 10) | recall@100 | "
      "speed-up (top 100) |\n|---|---|---|---|---|---|---|---|\n");
  for (const std::string& kind_name : std::vector<std::string>(absl::StrSplit(kinds, ','))) {
    absl::StatusOr<AnnKind> kind = ParseAnnKind(kind_name);
    if (!kind.ok()) Die(kind.status());
    absl::StatusOr<std::unique_ptr<GradientIndex>> index =
        GradientIndex::Open(subject.dir, GradientIndex::Verify::kSizes);
    if (!index.ok()) Die(index.status());
    AnnParameters parameters;
    parameters.kind = *kind;
    if (*kind != AnnKind::kHnsw) {
      parameters.nlist = nlist;
      parameters.train_rows = train_rows;
    }
    const auto started = std::chrono::steady_clock::now();
    absl::StatusOr<AnnInfo> info = AnnIndex::Build(**index, parameters, /*overwrite=*/true);
    if (!info.ok()) Die(info.status());
    const double build_seconds = Seconds(started);
    subject.reopen();
    const AnnParameters& p = info->parameters;
    const std::string shape = *kind == AnnKind::kHnsw    ? absl::StrCat("M ", p.hnsw_m)
                              : *kind == AnnKind::kIvfPq ? absl::StrCat("nlist ", p.nlist, ", m ",
                                                                        p.pq_m, "x", p.pq_bits, "b")
                                                         : absl::StrCat("nlist ", p.nlist);
    std::vector<ApproximateSearch> settings;
    for (int64_t v : *kind == AnnKind::kHnsw
                         ? std::vector<int64_t>{64, 256, 1024}
                         : std::vector<int64_t>{std::max<int64_t>(1, p.nlist / 64),
                                                std::max<int64_t>(1, p.nlist / 16),
                                                std::max<int64_t>(1, p.nlist / 4)}) {
      ApproximateSearch s;
      s.enabled = true;
      (*kind == AnnKind::kHnsw ? s.ef_search : s.nprobe) = v;
      settings.push_back(s);
    }
    for (const ApproximateSearch& s : settings) {
      double approx10 = 0, approx100 = 0;
      subject.run(10, s);  // warm up
      const TopRows found10 = Timed(subject.run, 10, s, queries, &approx10);
      const TopRows found100 = Timed(subject.run, 100, s, queries, &approx100);
      std::printf(
          "| %s (%s) | %.1f s | %.1f MiB | %s %lld | %.3f | %.1fx (%.2f ms) | %.3f | "
          "%.1fx (%.2f ms) |\n",
          kind_name.c_str(), shape.c_str(), build_seconds,
          static_cast<double>(info->ann_bytes) / (1 << 20),
          *kind == AnnKind::kHnsw ? "ef_search" : "nprobe",
          static_cast<long long>(*kind == AnnKind::kHnsw ? s.ef_search : s.nprobe),
          Recall(found10, truth10), exact10 / approx10, approx10 * 1e3, Recall(found100, truth100),
          exact100 / approx100, approx100 * 1e3);
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace tda

int main(int argc, char** argv) { return tda::Main(argc, argv); }
