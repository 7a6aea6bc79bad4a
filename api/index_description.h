// What DescribeIndex reports about an open index: the manifest, the model (kind, layers,
// training recipe read from the index's model/config.json; omitted when unreadable), factors,
// class names and the methods the index serves. Reads files of the index; thread-safe.
#pragma once

#include "attribution/attributor.h"
#include "tda/v1/attribution.pb.h"

namespace tda {

v1::DescribeIndexResponse DescribeAttributor(const Attributor& attributor);

}  // namespace tda
