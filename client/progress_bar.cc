#include "client/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tda {

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

ProgressBar::ProgressBar(std::FILE* out) : ProgressBar(out, isatty(fileno(out)) != 0) {}

ProgressBar::ProgressBar(std::FILE* out, bool is_tty) : out_(out), tty_(is_tty) {}

ProgressBar::~ProgressBar() { Finish(); }

ProgressFn ProgressBar::Callback() {
  return [this](std::string_view stage, int64_t done, int64_t total, std::string_view detail) {
    Update(stage, done, total, detail);
  };
}

std::string ProgressBar::Render(double elapsed) const {
  std::string line = stage_;
  if (total_ > 0) {
    const double fraction = std::clamp(static_cast<double>(done_) / total_, 0.0, 1.0);
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    absl::StrAppend(&line, " [", std::string(filled, '#'), std::string(kWidth - filled, '.'), "] ",
                    done_, "/", total_, absl::StrFormat(" %3.0f%%", 100 * fraction));
    if (done_ >= total_) {
      absl::StrAppend(&line, " in ", FormatDuration(elapsed));
    } else if (done_ > 0 && elapsed > 0.5) {
      absl::StrAppend(&line, " ETA ", FormatDuration(elapsed * (total_ - done_) / done_));
    }
  } else {
    absl::StrAppend(&line, " ", done_, " ", FormatDuration(elapsed));
  }
  if (!detail_.empty()) absl::StrAppend(&line, "  ", detail_);
  return line;
}

void ProgressBar::Update(std::string_view stage, int64_t done, int64_t total,
                         std::string_view detail) {
  std::lock_guard<std::mutex> lock(mu_);
  const Clock::time_point now = Clock::now();
  if (stage != stage_ || done < done_) {
    // A new stage (or a restart of the same one): end the previous line.
    if (tty_ && line_open_) {
      std::fputs("\n", out_);
    } else if (!tty_ && !stage_.empty() && !drawn_final_) {
      std::fprintf(out_, "%s\n",
                   Render(std::chrono::duration<double>(now - stage_start_).count()).c_str());
    }
    stage_ = std::string(stage);
    stage_start_ = now;
    last_draw_ = Clock::time_point{};
    last_decile_ = -1;
    line_open_ = false;
    drawn_final_ = false;
  }
  done_ = done;
  total_ = total;
  detail_ = std::string(detail);
  const bool final = total > 0 && done >= total;
  const double elapsed = std::chrono::duration<double>(now - stage_start_).count();
  if (tty_) {
    if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::fprintf(out_, "\r%s\x1b[K", Render(elapsed).c_str());
    line_open_ = true;
    if (final) {
      std::fputs("\n", out_);
      line_open_ = false;
    }
  } else {
    const int decile = total > 0 ? static_cast<int>(10 * done / total) : -1;
    if (decile == last_decile_ && !final) return;
    if (final && drawn_final_) return;
    last_decile_ = decile;
    drawn_final_ = final;
    std::fprintf(out_, "%s\n", Render(elapsed).c_str());
  }
  std::fflush(out_);
}

void ProgressBar::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (tty_ && line_open_) {
    std::fputs("\n", out_);
    line_open_ = false;
  }
  std::fflush(out_);
}

}  // namespace tda
