#include "attribution/readable_scores.h"

#include <algorithm>

namespace tda {

void SetReadableScores(int64_t live_rows, std::vector<Hit>* proponents, std::vector<Hit>* opponents) {
  const double n = static_cast<double>(std::max<int64_t>(1, live_rows));
  for (size_t rank = 0; rank < proponents->size(); ++rank) {
    Hit& hit = (*proponents)[rank];
    hit.loss_change = hit.score / n;
    hit.percentile = 100.0 * (n - static_cast<double>(rank)) / n;
  }
  for (size_t rank = 0; rank < opponents->size(); ++rank) {
    Hit& hit = (*opponents)[rank];
    hit.loss_change = hit.score / n;
    hit.percentile = 100.0 * static_cast<double>(rank + 1) / n;
  }
}

}  // namespace tda
