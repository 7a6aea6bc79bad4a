// Renders tda's progress callbacks (common/progress.h) on a terminal: one line per stage with
// stage name, a bar, done/total, percent, ETA and the detail text ("loss 0.41"), redrawn in
// place at most ~10 times a second. When the stream is not a terminal (CI logs, pipes) it
// writes plain lines instead, one per ~10% of a stage, so logs stay short.
//
// Thread-safety: the callback may be invoked from any one thread at a time (src/ reports from
// its working thread); a mutex makes concurrent callers safe but their lines interleave.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "common/progress.h"

namespace tda {

class ProgressBar {
 public:
  // Writes to `out` (stderr by default); `is_tty` defaults to isatty(fileno(out)).
  explicit ProgressBar(std::FILE* out = stderr);
  ProgressBar(std::FILE* out, bool is_tty);
  ~ProgressBar();  // finishes the current line

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // The callback to hand to src/ (valid while this object lives).
  ProgressFn Callback();

  void Update(std::string_view stage, int64_t done, int64_t total, std::string_view detail);
  // Ends the current stage's line (called automatically on a new stage and on destruction).
  void Finish();

 private:
  using Clock = std::chrono::steady_clock;
  std::string Render(double now_seconds) const;

  std::FILE* out_;
  bool tty_;
  std::mutex mu_;
  std::string stage_;
  int64_t done_ = 0, total_ = 0;
  std::string detail_;
  Clock::time_point stage_start_;
  Clock::time_point last_draw_;
  int last_decile_ = -1;    // non-TTY: last 10% step printed
  bool line_open_ = false;  // TTY: a line was drawn and not yet ended
  bool drawn_final_ = false;
};

// "1m05s", "42s", "3h02m".
std::string FormatDuration(double seconds);

}  // namespace tda
