#include "server/query_batcher.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tda {

// One caller in a batch. `queries` is the caller's own vector, read only under mutex_ while
// the caller still waits (it is copied when its batch starts).
struct QueryBatcher::Member {
  const std::vector<Query>* queries = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
  std::atomic<bool> gone{false};  // the caller gave up (set under mutex_)
  bool done = false;              // guarded by mutex_; results are final once true
  absl::StatusOr<std::vector<QueryResult>> results;
  int64_t batch_queries = 0;
};

struct QueryBatcher::Batch {
  std::shared_ptr<const Attributor> attributor;
  std::string options_key;
  AttributeOptions options;  // the opener's, without its cancellation
  absl::Time ready_at;       // opened + timeout
  // Guarded by mutex_ (live is atomic too: the batch's cancellation reads it without the lock).
  std::vector<std::shared_ptr<Member>> members;
  int64_t queries = 0;  // of the members still waiting
  bool started = false;
  std::atomic<int64_t> live{0};  // members still waiting
};

namespace {

bool IsCancellation(const absl::Status& status) {
  return status.code() == absl::StatusCode::kCancelled ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

// The results of queries[offset, offset + count) as the caller who sent exactly those queries
// gets them: raw and text query ids ("raw:<n>", "text:<n>", attributor.h) count from 0 within
// that caller's request.
std::vector<QueryResult> CallersResults(std::vector<QueryResult>* all,
                                        const std::vector<Query>& queries, int64_t offset,
                                        int64_t count) {
  std::vector<QueryResult> mine;
  mine.reserve(static_cast<size_t>(count));
  for (int64_t q = 0; q < count; ++q) {
    QueryResult result = std::move((*all)[static_cast<size_t>(offset + q)]);
    const Query& query = queries[static_cast<size_t>(offset + q)];
    if (query.sample_id.empty()) {
      result.query_id = absl::StrCat(query.text.has_value() ? "text:" : "raw:", q);
    }
    mine.push_back(std::move(result));
  }
  return mine;
}

}  // namespace

QueryBatcher::QueryBatcher(QuerySlots* slots, int workers, int64_t max_waiting,
                           const BatchingOptions& options)
    : slots_(slots), max_waiting_(max_waiting), options_(options) {
  if (!options_.enabled()) return;
  for (int w = 0; w < std::max(workers, 1); ++w) workers_.emplace_back([this] { WorkerLoop(); });
}

QueryBatcher::~QueryBatcher() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

absl::StatusOr<std::vector<QueryResult>> QueryBatcher::Attribute(
    std::shared_ptr<const Attributor> attributor, const std::string& options_key,
    const std::vector<Query>& queries, const AttributeOptions& options, int64_t* batch_queries) {
  *batch_queries = 0;
  if (options_key.empty() || !WouldBatch(static_cast<int64_t>(queries.size()))) {
    if (absl::Status s = slots_->Acquire(options.cancellation); !s.ok()) return s;
    const absl::Cleanup release = [this] { slots_->Release(); };
    *batch_queries = static_cast<int64_t>(queries.size());
    return attributor->Attribute(queries, options);
  }
  return RunBatched(std::move(attributor), options_key, queries, options, batch_queries);
}

bool QueryBatcher::WouldBatch(int64_t query_count) const {
  return options_.enabled() && query_count < options_.max_batch_size;
}

absl::StatusOr<std::vector<QueryResult>> QueryBatcher::RunBatched(
    std::shared_ptr<const Attributor> attributor, const std::string& options_key,
    const std::vector<Query>& queries, const AttributeOptions& options, int64_t* batch_queries) {
  const absl::Status arrived = options.cancellation.Check("query waiting for a batch");
  if (!arrived.ok()) return arrived;
  const int64_t count = static_cast<int64_t>(queries.size());
  auto member = std::make_shared<Member>();
  member->queries = &queries;
  member->deadline = options.cancellation.deadline();

  absl::MutexLock lock(&mutex_);
  if (max_waiting_ > 0 && waiting_calls_ >= max_waiting_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("server busy: ", waiting_calls_, " queries queued; retry later"));
  }
  std::shared_ptr<Batch> batch;
  for (const std::shared_ptr<Batch>& open : open_) {
    if (open->attributor == attributor && open->options_key == options_key &&
        open->queries + count <= options_.max_batch_size) {
      batch = open;
      break;
    }
  }
  if (batch == nullptr) {
    batch = std::make_shared<Batch>();
    batch->attributor = std::move(attributor);
    batch->options_key = options_key;
    batch->options = options;
    batch->options.cancellation = Cancellation();
    batch->ready_at = absl::Now() + options_.timeout;
    open_.push_back(batch);
  }
  batch->members.push_back(member);
  batch->queries += count;
  batch->live.fetch_add(1);
  ++waiting_calls_;

  while (!member->done) {
    const absl::Time wake =
        std::min(member->deadline, absl::Now() + QuerySlots::kCancelPollInterval);
    if (mutex_.AwaitWithDeadline(absl::Condition(&member->done), wake)) break;
    absl::Status stop = options.cancellation.Check(batch->started ? "query computing in a batch"
                                                                  : "query waiting for a batch");
    if (!stop.ok()) {
      // Leaving: a batch not yet started takes others in this caller's place; one computing
      // stops once its last member has left (its cancellation reads `live`).
      member->gone.store(true);
      batch->live.fetch_sub(1);
      if (!batch->started) {
        batch->queries -= count;
        --waiting_calls_;
      }
      return stop;
    }
  }
  *batch_queries = member->batch_queries;
  return std::move(member->results);
}

void QueryBatcher::WorkerLoop() {
  while (std::shared_ptr<Batch> batch = TakeReadyBatch()) RunBatch(*batch);
}

int64_t QueryBatcher::ExpectedCallers() const {
  int64_t most = 0;
  for (int64_t callers : recent_callers_) most = std::max(most, callers);
  return most;
}

bool QueryBatcher::WorkerShouldWake() const {
  if (stopping_ || open_.empty()) return stopping_;
  const Batch& front = *open_.front();
  const int64_t live = front.live.load();
  const int64_t expected = ExpectedCallers();
  return front.queries >= options_.max_batch_size || live == 0 ||
         (expected >= 2 && live >= expected) || absl::Now() >= front.ready_at;
}

std::shared_ptr<QueryBatcher::Batch> QueryBatcher::TakeReadyBatch() {
  absl::MutexLock lock(&mutex_);
  while (true) {
    // Batches every member left before they started are dropped unrun.
    while (!open_.empty() && open_.front()->live.load() == 0) open_.pop_front();
    if (stopping_) return nullptr;
    if (open_.empty()) {
      mutex_.Await(absl::Condition(this, &QueryBatcher::StoppingOrOpen));
      continue;
    }
    if (WorkerShouldWake()) {
      std::shared_ptr<Batch> batch = std::move(open_.front());
      open_.pop_front();
      batch->started = true;
      waiting_calls_ -= batch->live.load();
      recent_callers_.push_back(batch->live.load());
      if (recent_callers_.size() > kRecentBatches) recent_callers_.pop_front();
      return batch;
    }
    mutex_.AwaitWithDeadline(absl::Condition(this, &QueryBatcher::WorkerShouldWake),
                             open_.front()->ready_at);
  }
}

void QueryBatcher::RunBatch(Batch& batch) {
  // The members still waiting, and their queries copied into one request.
  std::vector<std::shared_ptr<Member>> members;
  std::vector<Query> queries;
  std::vector<int64_t> offsets, counts;
  absl::Time latest_deadline = absl::InfinitePast();
  {
    absl::MutexLock lock(&mutex_);
    for (const std::shared_ptr<Member>& member : batch.members) {
      if (member->gone.load()) continue;
      members.push_back(member);
      offsets.push_back(static_cast<int64_t>(queries.size()));
      counts.push_back(static_cast<int64_t>(member->queries->size()));
      queries.insert(queries.end(), member->queries->begin(), member->queries->end());
      latest_deadline = std::max(latest_deadline, member->deadline);
    }
  }
  if (members.empty()) return;
  // The batch stops only when every member has left (by the last deadline at the latest).
  AttributeOptions options = batch.options;
  std::atomic<int64_t>* live = &batch.live;
  options.cancellation = Cancellation(latest_deadline, [live] { return live->load() == 0; });

  std::vector<absl::StatusOr<std::vector<QueryResult>>> answers(members.size());
  std::vector<int64_t> computed(members.size(), static_cast<int64_t>(queries.size()));
  if (absl::Status slot = slots_->Acquire(options.cancellation); !slot.ok()) {
    std::fill(answers.begin(), answers.end(), slot);
  } else {
    const absl::Cleanup release = [this] { slots_->Release(); };
    absl::StatusOr<std::vector<QueryResult>> all = batch.attributor->Attribute(queries, options);
    for (size_t m = 0; m < members.size(); ++m) {
      if (all.ok()) {
        answers[m] = CallersResults(&*all, queries, offsets[m], counts[m]);
      } else if (members.size() == 1 || IsCancellation(all.status())) {
        answers[m] = all.status();
      } else {
        // The failure may be one member's (an unknown sample id): each gets its own answer.
        const std::vector<Query> alone(queries.begin() + offsets[m],
                                       queries.begin() + offsets[m] + counts[m]);
        AttributeOptions own = batch.options;
        Member* member = members[m].get();
        own.cancellation = Cancellation(member->deadline, [member] { return member->gone.load(); });
        answers[m] = batch.attributor->Attribute(alone, own);
        computed[m] = counts[m];
      }
    }
  }
  absl::MutexLock lock(&mutex_);
  for (size_t m = 0; m < members.size(); ++m) {
    members[m]->results = std::move(answers[m]);
    members[m]->batch_queries = computed[m];
    members[m]->done = true;
  }
}

}  // namespace tda
