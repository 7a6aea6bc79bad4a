// tda-server's Prometheus metrics (served on --metrics-listen, GET /metrics): the tda-specific
// families on a MetricsRegistry (server/metrics_registry.h, tda's own: Debian 12 has no
// prometheus-cpp).
//
// Recorded as they happen:
//   tda_requests_total{rpc,index,code}             every tda.v1 call (the call-log interceptor)
//   tda_request_duration_seconds{rpc,index}        its latency, buckets 0.5 ms .. 30 s
//   tda_attribute_batch_queries{index}             queries per computed batch (RecordBatch)
//   tda_scan_bytes_total{index}                    index bytes scanned (RecordScan)
// Read at scrape time:
//   tda_query_queue_depth, tda_query_slots_in_use  QuerySlots
//   tda_jobs{state}                                the job store (one COUNT query), with jobs
//   tda_index_rows{index,version}, tda_index_bytes{index,version}   serving versions
//   tda_index_versions{index,state}                versions by state, as ListIndexes lists them
//   tda_index_loads_total{index,result}, tda_index_swaps_total{index}   the repository's counts
//   process_resident_memory_bytes, process_start_time_seconds         /proc/self
//
// The `index` label is the request's index name when the repository knows it, "" for a request
// naming none (the only index), and "unknown" otherwise, so callers cannot grow the series
// without bound. /metrics carries counts only, no data, and asks no token: keep the port
// internal (a cluster network, not the internet).
//
// Thread-safety: all methods may be called from any thread. The repository, slots and job
// store must outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "server/metrics_registry.h"

namespace tda {

class IndexRepository;
class JobStore;
class QuerySlots;

class ServerMetrics {
 public:
  // `jobs` may be null (a server without --state-dir: no tda_jobs samples).
  ServerMetrics(const IndexRepository* repository, const QuerySlots* slots, JobStore* jobs);

  // One finished tda.v1 call: rpc is the method path ("/tda.v1.AttributionService/Attribute"),
  // code the status name ("OK", "NOT_FOUND").
  void RecordCall(const std::string& rpc, const std::string& index, const std::string& code,
                  double seconds);
  // One attribution batch of `queries` queries computed on `index`.
  void RecordBatch(const std::string& index, int64_t queries);
  // `bytes` of `index`'s gradient rows read by a scan.
  void RecordScan(const std::string& index, int64_t bytes);

  // The text exposition (format 0.0.4, Content-Type MetricsRegistry::kContentType).
  std::string Exposition() const { return registry_.Exposition(); }

 private:
  std::string IndexLabel(const std::string& index) const;

  const IndexRepository* repository_;
  MetricsRegistry registry_;
  Counter* requests_;
  Histogram* request_seconds_;
  Histogram* batch_queries_;
  Counter* scan_bytes_;
};

}  // namespace tda
