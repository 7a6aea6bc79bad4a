// The readable figures of a hit (Hit::loss_change, Hit::percentile), from its score, its rank
// and the number of live rows N the scores were ranked among: loss_change = score / N (the
// first-order change of the query's loss were the sample removed and the model retrained);
// percentile = 100 x the share of the N rows scoring at most the hit (proponents, best first:
// N - rank of them; opponents, lowest first: rank + 1). Used by the attributor after a scan and
// by the router after merging its shards' hits.
#pragma once

#include <cstdint>
#include <vector>

#include "attribution/attributor.h"

namespace tda {

// REQUIRES: `proponents` ranked by score descending, `opponents` ascending (as a scan ranks).
void SetReadableScores(int64_t live_rows, std::vector<Hit>* proponents, std::vector<Hit>* opponents);

}  // namespace tda
