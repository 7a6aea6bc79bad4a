// Progress reporting for long work in src/: a callback the caller (CLI progress bar, job runner,
// or nothing) supplies. `done` of `total` units of `stage` are finished; `detail` is free text
// such as "loss 0.412". Callbacks are invoked on the working thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace tda {

using ProgressFn =
    std::function<void(std::string_view stage, int64_t done, int64_t total, std::string_view detail)>;

inline void ReportProgress(const ProgressFn& fn, std::string_view stage, int64_t done, int64_t total,
                           std::string_view detail = {}) {
  if (fn) fn(stage, done, total, detail);
}

}  // namespace tda
