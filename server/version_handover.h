// Handing a served index name over from one version to the next without making queries pay
// for it (IndexRepository, on its background thread): what a new version's first queries
// would otherwise do is done before the swap, and the old version is closed after it, off the
// query path.
#pragma once

#include <memory>

#include "index/gradient_index.h"
#include "server/index_version.h"

namespace tda {

// Reads one row per memory page of every shard, so that this thread, not the first queries on
// a new version, faults its mapped rows into the page tables (measured: the first scan of a
// 322 MB version took 710 ms against 70 ms for the next).
void PrefaultRows(const GradientIndex& index);

// Loads now what the first queries by sample id would otherwise load on a new version, the
// corpus' training and held-out splits (an id found in neither makes the lookup read both;
// measured: 650 ms for Fashion-MNIST, added to the first calls after a swap). Not for language
// models: their corpora can be large, and text queries need none of it.
void WarmSampleLookup(const Attributor& attributor);

// Waits (at most 2 s) until `version` is held only here, so that closing it (unmapping its
// files, freeing its model) happens on this background thread and not in the call that happens
// to finish last on it; after 2 s that call closes it.
void CloseWhenUnused(std::shared_ptr<const IndexVersion> version);

}  // namespace tda
