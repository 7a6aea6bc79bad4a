#include "server/server_metrics.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jobs/job_store.h"
#include "server/index_repository.h"
#include "server/query_slots.h"

namespace tda {
namespace {

// Resident set size from /proc/self/statm (second field, in pages); 0 if unreadable.
double ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t total_pages = 0, resident_pages = 0;
  if (!(statm >> total_pages >> resident_pages)) return 0;
  return static_cast<double>(resident_pages) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

// The process's start in seconds since the epoch: its start in clock ticks after boot
// (/proc/self/stat field 22) plus the boot time (/proc/stat btime); 0 if unreadable.
double StartTimeSeconds() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const size_t name_end = stat.rfind(')');  // the command name may hold spaces
  if (name_end == std::string::npos) return 0;
  std::istringstream fields(stat.substr(name_end + 2));
  std::string field;
  for (int i = 3; i < 22 && fields >> field; ++i) {
  }
  double start_ticks = 0;
  if (!(fields >> start_ticks)) return 0;
  std::ifstream boot("/proc/stat");
  std::string line;
  while (std::getline(boot, line)) {
    if (line.rfind("btime ", 0) == 0) {
      return std::stod(line.substr(6)) + start_ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  return 0;
}

const char* VersionStateLabel(v1::IndexVersionStatus::State state) {
  switch (state) {
    case v1::IndexVersionStatus::LOADING:
      return "loading";
    case v1::IndexVersionStatus::SERVING:
      return "serving";
    case v1::IndexVersionStatus::FAILED:
      return "failed";
    case v1::IndexVersionStatus::UNLOADED:
      return "unloaded";
    default:
      return "unspecified";
  }
}

}  // namespace

ServerMetrics::ServerMetrics(const IndexRepository* repository, const QuerySlots* slots,
                             JobStore* jobs)
    : repository_(repository) {
  requests_ = registry_.AddCounter("tda_requests_total",
                                   "tda.v1 calls answered, by method, index and status code.",
                                   {"rpc", "index", "code"});
  request_seconds_ = registry_.AddHistogram(
      "tda_request_duration_seconds", "tda.v1 call latency from arrival to status, in seconds.",
      {"rpc", "index"},
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  batch_queries_ = registry_.AddHistogram("tda_attribute_batch_queries",
                                          "Queries per attribution batch computed at once.",
                                          {"index"}, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  scan_bytes_ = registry_.AddCounter("tda_scan_bytes_total",
                                     "Bytes of index gradient rows read by scans.", {"index"});
  using Type = MetricsRegistry::Type;
  registry_.AddCollected(
      "tda_query_queue_depth", "Attribute calls waiting for a query slot.", Type::kGauge, {},
      [slots] {
        return std::vector<CollectedSample>{{{}, static_cast<double>(slots->waiting())}};
      });
  registry_.AddCollected(
      "tda_query_slots_in_use", "Query slots computing now.", Type::kGauge, {}, [slots] {
        return std::vector<CollectedSample>{{{}, static_cast<double>(slots->in_use())}};
      });
  registry_.AddCollected(
      "tda_jobs", "Background jobs in the job store, by state.", Type::kGauge, {"state"}, [jobs] {
        std::vector<CollectedSample> samples;
        if (jobs == nullptr) return samples;
        absl::StatusOr<std::map<JobState, int64_t>> counts = jobs->CountByState();
        if (!counts.ok()) return samples;  // the store is busy or broken: no sample this time
        for (JobState state : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                               JobState::kFailed, JobState::kCancelled, JobState::kInterrupted}) {
          auto it = counts->find(state);
          samples.push_back(
              {{JobStateName(state)}, it == counts->end() ? 0.0 : static_cast<double>(it->second)});
        }
        return samples;
      });
  registry_.AddCollected("tda_index_rows", "Rows of each serving index version.", Type::kGauge,
                         {"index", "version"}, [repository] {
                           std::vector<CollectedSample> samples;
                           for (const auto& version : repository->ServingVersions()) {
                             samples.push_back({{version->name(), absl::StrCat(version->version())},
                                                static_cast<double>(version->rows())});
                           }
                           return samples;
                         });
  registry_.AddCollected("tda_index_bytes",
                         "Bytes of the files of each serving index version (its manifest's list).",
                         Type::kGauge, {"index", "version"}, [repository] {
                           std::vector<CollectedSample> samples;
                           for (const auto& version : repository->ServingVersions()) {
                             samples.push_back({{version->name(), absl::StrCat(version->version())},
                                                static_cast<double>(version->bytes())});
                           }
                           return samples;
                         });
  registry_.AddCollected(
      "tda_index_versions", "Index versions by state (loading, serving, failed, unloaded).",
      Type::kGauge, {"index", "state"}, [repository] {
        std::map<LabelValues, double> counts;
        const v1::ListIndexesResponse list = repository->List();
        for (const v1::IndexVersionStatus& entry : list.indexes()) {
          counts[{entry.name(), VersionStateLabel(entry.state())}] += 1;
        }
        std::vector<CollectedSample> samples;
        for (auto& [labels, count] : counts) samples.push_back({labels, count});
        return samples;
      });
  registry_.AddCollected(
      "tda_index_loads_total", "Index version loads since start, by result (ok, failed).",
      Type::kCounter, {"index", "result"}, [repository] {
        std::vector<CollectedSample> samples;
        for (const auto& [name, counts] : repository->Counts()) {
          samples.push_back({{name, "ok"}, static_cast<double>(counts.loaded)});
          samples.push_back({{name, "failed"}, static_cast<double>(counts.failed)});
        }
        return samples;
      });
  registry_.AddCollected("tda_index_swaps_total",
                         "Loads that replaced a serving version (hot reloads).", Type::kCounter,
                         {"index"}, [repository] {
                           std::vector<CollectedSample> samples;
                           for (const auto& [name, counts] : repository->Counts()) {
                             samples.push_back({{name}, static_cast<double>(counts.swaps)});
                           }
                           return samples;
                         });
  registry_.AddCollected("process_resident_memory_bytes", "Resident memory size in bytes.",
                         Type::kGauge, {}, [] {
                           return std::vector<CollectedSample>{{{}, ResidentBytes()}};
                         });
  const double start_time = StartTimeSeconds();
  registry_.AddCollected("process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.", Type::kGauge, {},
                         [start_time] {
                           return std::vector<CollectedSample>{{{}, start_time}};
                         });
}

std::string ServerMetrics::IndexLabel(const std::string& index) const {
  if (index.empty() || repository_->Knows(index)) return index;
  return "unknown";
}

void ServerMetrics::RecordCall(const std::string& rpc, const std::string& index,
                               const std::string& code, double seconds) {
  const std::string label = IndexLabel(index);
  requests_->Add({rpc, label, code});
  request_seconds_->Observe({rpc, label}, seconds);
}

void ServerMetrics::RecordBatch(const std::string& index, int64_t queries) {
  batch_queries_->Observe({IndexLabel(index)}, static_cast<double>(queries));
}

void ServerMetrics::RecordScan(const std::string& index, int64_t bytes) {
  scan_bytes_->Add({IndexLabel(index)}, static_cast<double>(bytes));
}

}  // namespace tda
