#include "server/self_influence_cache.h"

#include <utility>

namespace tda {

SelfInfluenceCache::Key SelfInfluenceCache::KeyOf(const SelfInfluenceQuery& query) {
  const std::optional<Damping>& damping = query.options.damping;
  return {static_cast<int>(query.options.method), damping ? damping->relative : 0.0,
          damping ? damping->absolute.value_or(-1.0) : -1.0, damping.has_value(),
          query.by_document};
}

std::shared_ptr<const Eigen::VectorXd> SelfInfluenceCache::Find(
    const SelfInfluenceQuery& query) const {
  absl::MutexLock lock(&mutex_);
  auto found = values_.find(KeyOf(query));
  return found == values_.end() ? nullptr : found->second;
}

std::shared_ptr<const Eigen::VectorXd> SelfInfluenceCache::Insert(const SelfInfluenceQuery& query,
                                                                  Eigen::VectorXd values) {
  absl::MutexLock lock(&mutex_);
  return values_
      .try_emplace(KeyOf(query), std::make_shared<const Eigen::VectorXd>(std::move(values)))
      .first->second;
}

}  // namespace tda
