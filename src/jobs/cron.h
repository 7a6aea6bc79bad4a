// Cron expressions: when a schedule fires.
//
// The standard 5-field form "MIN HOUR DOM MON DOW" (Vixie cron / POSIX crontab semantics):
//   MIN 0-59, HOUR 0-23, DOM 1-31, MON 1-12 or jan-dec, DOW 0-7 or sun-sat (0 and 7 = Sunday).
// Each field is "*", a number, a name, a range "a-b", a step "*/n", "a-b/n" or "a/n" (= a-max/n),
// or a comma-separated list of those. As in Vixie cron, when both DOM and DOW are restricted
// (neither starts with "*") a day matches if EITHER matches; otherwise both must match.
// Nicknames: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly.
//
// An optional leading SECONDS field (0-59) gives the 6-field form "SEC MIN HOUR DOM MON DOW"
// (as in Quartz / Spring); it exists so that tests can schedule runs seconds apart. The 5-field
// form always fires at second 0.
//
// Times are UTC seconds since the epoch. Immutable and thread-safe after Parse.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace tda {

class CronSchedule {
 public:
  // kInvalidArgument naming the field and the text that is wrong.
  [[nodiscard]] static absl::StatusOr<CronSchedule> Parse(const std::string& expression);

  // The first firing time strictly after `after` (UTC epoch seconds). kNotFound when none
  // exists within 5 years (e.g. "0 0 30 2 *": February 30th).
  [[nodiscard]] absl::StatusOr<int64_t> Next(int64_t after) const;

  // Whether the schedule fires at exactly this second.
  bool Matches(int64_t time) const;

  const std::string& expression() const { return expression_; }

 private:
  CronSchedule() = default;
  bool DayMatches(int day_of_month, int month, int day_of_week) const;

  std::string expression_;
  std::bitset<60> seconds_, minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> days_of_week_;    // 0..6, Sunday = 0
  bool dom_restricted_ = false, dow_restricted_ = false;
};

}  // namespace tda
