#include "jobs/cron.h"

#include <ctime>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace tda {

namespace {

struct FieldSpec {
  const char* name;
  int min, max;
  const char* const* names;  // names[i] stands for value min + i (nullptr: none)
  int name_count;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec kSecond{"second", 0, 59, nullptr, 0};
constexpr FieldSpec kMinute{"minute", 0, 59, nullptr, 0};
constexpr FieldSpec kHour{"hour", 0, 23, nullptr, 0};
constexpr FieldSpec kDayOfMonth{"day of month", 1, 31, nullptr, 0};
constexpr FieldSpec kMonth{"month", 1, 12, kMonthNames, 12};
// 7 is accepted as Sunday and folded onto 0 after parsing.
constexpr FieldSpec kDayOfWeek{"day of week", 0, 7, kDayNames, 7};

absl::StatusOr<int> ParseValue(const FieldSpec& spec, absl::string_view text) {
  int value = 0;
  if (absl::SimpleAtoi(text, &value)) {
    if (value < spec.min || value > spec.max) {
      return absl::InvalidArgumentError(
          absl::StrCat("cron ", spec.name, ": ", value, " is outside ", spec.min, "-", spec.max));
    }
    return value;
  }
  const std::string lower = absl::AsciiStrToLower(text);
  for (int i = 0; i < spec.name_count; ++i) {
    if (lower == spec.names[i]) return spec.min + i;
  }
  return absl::InvalidArgumentError(absl::StrCat("cron ", spec.name, ": '", std::string(text),
                                                 "' is not a number",
                                                 spec.name_count > 0 ? " or a name" : ""));
}

// Sets the bits of one field ("*/5", "1-5,10", "mon-fri", ...); *restricted is false for a
// field that starts with '*'.
template <size_t N>
absl::Status ParseField(const FieldSpec& spec, absl::string_view text, std::bitset<N>* bits,
                        bool* restricted = nullptr) {
  if (text.empty())
    return absl::InvalidArgumentError(absl::StrCat("cron ", spec.name, " is empty"));
  if (restricted != nullptr) *restricted = text[0] != '*';
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    if (item.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cron ", spec.name, ": empty list item in '", std::string(text), "'"));
    }
    int step = 1;
    const size_t slash = item.find('/');
    absl::string_view range = item.substr(0, slash);
    if (slash != absl::string_view::npos) {
      const absl::string_view step_text = item.substr(slash + 1);
      if (!absl::SimpleAtoi(step_text, &step) || step < 1 || step > spec.max) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cron ", spec.name, ": step '", std::string(step_text), "' must be 1-", spec.max));
      }
    }
    int first = spec.min, last = spec.max;
    if (range != "*") {
      const size_t dash = range.find('-');
      ASSIGN_OR_RETURN(first, ParseValue(spec, range.substr(0, dash)));
      if (dash != absl::string_view::npos) {
        ASSIGN_OR_RETURN(last, ParseValue(spec, range.substr(dash + 1)));
      } else if (slash == absl::string_view::npos) {
        last = first;  // a single value; "a/n" means a-max/n
      }
      if (last < first) {
        return absl::InvalidArgumentError(
            absl::StrCat("cron ", spec.name, ": range '", std::string(range), "' runs backwards"));
      }
    }
    for (int v = first; v <= last; v += step) bits->set(static_cast<size_t>(v));
  }
  return absl::OkStatus();
}

std::string ExpandNickname(const std::string& text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return text;
}

std::tm ToUtc(int64_t time) {
  const std::time_t t = static_cast<std::time_t>(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

int64_t FromUtc(std::tm tm) { return static_cast<int64_t>(timegm(&tm)); }

}  // namespace

absl::StatusOr<CronSchedule> CronSchedule::Parse(const std::string& expression) {
  const std::string expanded = ExpandNickname(std::string(absl::StripAsciiWhitespace(expression)));
  std::vector<absl::string_view> fields =
      absl::StrSplit(expanded, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 5 && fields.size() != 6) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron expression '", expression, "' has ", fields.size(),
                     " fields; expected 5 (MIN HOUR DOM MON DOW) or 6 (SEC first)"));
  }
  CronSchedule schedule;
  schedule.expression_ = expression;
  size_t f = 0;
  if (fields.size() == 6) {
    RETURN_IF_ERROR(ParseField(kSecond, fields[f++], &schedule.seconds_));
  } else {
    schedule.seconds_.set(0);
  }
  RETURN_IF_ERROR(ParseField(kMinute, fields[f++], &schedule.minutes_));
  RETURN_IF_ERROR(ParseField(kHour, fields[f++], &schedule.hours_));
  RETURN_IF_ERROR(
      ParseField(kDayOfMonth, fields[f++], &schedule.days_of_month_, &schedule.dom_restricted_));
  RETURN_IF_ERROR(ParseField(kMonth, fields[f++], &schedule.months_));
  std::bitset<8> dow;
  RETURN_IF_ERROR(ParseField(kDayOfWeek, fields[f++], &dow, &schedule.dow_restricted_));
  for (size_t d = 0; d < 7; ++d) schedule.days_of_week_[d] = dow[d];
  if (dow[7]) schedule.days_of_week_.set(0);
  return schedule;
}

bool CronSchedule::DayMatches(int day_of_month, int month, int day_of_week) const {
  if (!months_[static_cast<size_t>(month)]) return false;
  const bool dom = days_of_month_[static_cast<size_t>(day_of_month)];
  const bool dow = days_of_week_[static_cast<size_t>(day_of_week)];
  if (dom_restricted_ && dow_restricted_) return dom || dow;
  return dom && dow;
}

bool CronSchedule::Matches(int64_t time) const {
  const std::tm tm = ToUtc(time);
  return DayMatches(tm.tm_mday, tm.tm_mon + 1, tm.tm_wday) &&
         hours_[static_cast<size_t>(tm.tm_hour)] && minutes_[static_cast<size_t>(tm.tm_min)] &&
         seconds_[static_cast<size_t>(tm.tm_sec)];
}

absl::StatusOr<int64_t> CronSchedule::Next(int64_t after) const {
  const int64_t limit = after + int64_t{5} * 366 * 24 * 3600;
  int64_t t = after + 1;
  // Advance the coarsest field that does not match to its next unit, zeroing the finer ones;
  // each step moves forward, so this ends within a bounded number of iterations.
  while (t <= limit) {
    std::tm tm = ToUtc(t);
    if (!DayMatches(tm.tm_mday, tm.tm_mon + 1, tm.tm_wday)) {
      tm.tm_mday += 1;
      tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    } else if (!hours_[static_cast<size_t>(tm.tm_hour)]) {
      tm.tm_hour += 1;
      tm.tm_min = tm.tm_sec = 0;
    } else if (!minutes_[static_cast<size_t>(tm.tm_min)]) {
      tm.tm_min += 1;
      tm.tm_sec = 0;
    } else if (!seconds_[static_cast<size_t>(tm.tm_sec)]) {
      tm.tm_sec += 1;
    } else {
      return t;
    }
    t = FromUtc(tm);
  }
  return absl::NotFoundError(
      absl::StrCat("cron expression '", expression_, "' never fires within 5 years"));
}

}  // namespace tda
