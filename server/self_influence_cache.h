// The self-influence values of every row (or document) of one index version, kept per
// (method, damping, by_document): computing them scans and preconditions the whole index
// (seconds on a large one), ranking them afterwards takes microseconds. Each IndexVersion
// holds its own cache (server/index_version.h), so values never outlive the rows they
// describe: a new version starts empty. A few distinct keys are expected
// (the methods an index serves, a handful of dampings); each entry costs 8 bytes per row.
//
// Thread-safety: all methods may be called from any thread. Two first calls for the same key
// at once may both compute; the first to finish is kept.
#pragma once

#include <Eigen/Core>
#include <map>
#include <memory>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "api/self_influence_conversion.h"

namespace tda {

class SelfInfluenceCache {
 public:
  // The kept values for the query's method, damping and by_document; null when none yet.
  std::shared_ptr<const Eigen::VectorXd> Find(const SelfInfluenceQuery& query) const;
  // Keeps `values` for the query's key unless some are kept already; returns the kept ones.
  std::shared_ptr<const Eigen::VectorXd> Insert(const SelfInfluenceQuery& query,
                                                Eigen::VectorXd values);

 private:
  // method, relative damping, absolute damping (-1: none), damping set, by_document.
  using Key = std::tuple<int, double, double, bool, bool>;
  static Key KeyOf(const SelfInfluenceQuery& query);

  mutable absl::Mutex mutex_;
  std::map<Key, std::shared_ptr<const Eigen::VectorXd>> values_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tda
