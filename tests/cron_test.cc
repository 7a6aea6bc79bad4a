// CronSchedule: the 5-field standard form (ranges, steps, lists, names, DOM/DOW "or" rule,
// nicknames), the optional leading seconds field, and precise errors for malformed fields.
#include "jobs/cron.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <vector>

#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::StatusIs;
using ::testing::HasSubstr;

// UTC epoch seconds of a calendar time.
int64_t Utc(int year, int month, int day, int hour = 0, int minute = 0, int second = 0) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

int64_t NextOf(const std::string& expression, int64_t after) {
  absl::StatusOr<CronSchedule> cron = CronSchedule::Parse(expression);
  EXPECT_TRUE(cron.ok()) << cron.status();
  if (!cron.ok()) return -1;
  absl::StatusOr<int64_t> next = cron->Next(after);
  EXPECT_TRUE(next.ok()) << next.status();
  return next.ok() ? *next : -1;
}

TEST(CronTest, EveryMinuteFiresAtTheNextWholeMinute) {
  EXPECT_EQ(NextOf("* * * * *", Utc(2026, 1, 1, 0, 0, 30)), Utc(2026, 1, 1, 0, 1, 0));
  // Strictly after: a time that matches is not returned again.
  EXPECT_EQ(NextOf("* * * * *", Utc(2026, 1, 1, 0, 1, 0)), Utc(2026, 1, 1, 0, 2, 0));
}

TEST(CronTest, StepsRangesAndListsCombine) {
  // 2026-11-27 is a Friday.
  EXPECT_EQ(NextOf("*/15 9-17 * * mon-fri", Utc(2026, 11, 27, 17, 50)), Utc(2026, 11, 30, 9, 0));
  EXPECT_EQ(NextOf("*/15 9-17 * * 1-5", Utc(2026, 11, 27, 10, 14)), Utc(2026, 11, 27, 10, 15));
  EXPECT_EQ(NextOf("0 8,12,18 * * *", Utc(2026, 3, 1, 12, 0)), Utc(2026, 3, 1, 18, 0));
  EXPECT_EQ(NextOf("10-20/5 * * * *", Utc(2026, 3, 1, 5, 16)), Utc(2026, 3, 1, 5, 20));
  EXPECT_EQ(NextOf("10-20/5 * * * *", Utc(2026, 3, 1, 5, 20)), Utc(2026, 3, 1, 6, 10));
  // "a/n" is a-max/n.
  EXPECT_EQ(NextOf("5/20 * * * *", Utc(2026, 3, 1, 5, 26)), Utc(2026, 3, 1, 5, 45));
  EXPECT_EQ(NextOf("5/20 * * * *", Utc(2026, 3, 1, 5, 45)), Utc(2026, 3, 1, 6, 5));
}

TEST(CronTest, MonthAndDayNamesAndSundayAsSeven) {
  EXPECT_EQ(NextOf("0 0 1 feb *", Utc(2026, 3, 1)), Utc(2027, 2, 1));
  EXPECT_EQ(NextOf("0 0 1 FEB *", Utc(2026, 1, 5)), Utc(2026, 2, 1));
  // 2026-11-29 is a Sunday.
  EXPECT_EQ(NextOf("30 6 * * 7", Utc(2026, 11, 25)), Utc(2026, 11, 29, 6, 30));
  EXPECT_EQ(NextOf("30 6 * * sun", Utc(2026, 11, 25)), Utc(2026, 11, 29, 6, 30));
  EXPECT_EQ(NextOf("30 6 * * 0", Utc(2026, 11, 25)), Utc(2026, 11, 29, 6, 30));
}

TEST(CronTest, RestrictedDayOfMonthAndDayOfWeekMatchEither) {
  // "the 13th, or any Friday": from Sat 2026-11-28 the next is... Fri 2026-12-04.
  EXPECT_EQ(NextOf("0 0 13 * 5", Utc(2026, 11, 28)), Utc(2026, 12, 4));
  // From Fri 2026-12-04 (after midnight) the 11th is a Friday, before the 13th.
  EXPECT_EQ(NextOf("0 0 13 * 5", Utc(2026, 12, 4, 1)), Utc(2026, 12, 11));
  // With DOW "*", only the DOM counts (and vice versa).
  EXPECT_EQ(NextOf("0 0 13 * *", Utc(2026, 11, 28)), Utc(2026, 12, 13));
  EXPECT_EQ(NextOf("0 0 * * 5", Utc(2026, 11, 28)), Utc(2026, 12, 4));
}

TEST(CronTest, LeapDaysAndImpossibleDates) {
  EXPECT_EQ(NextOf("0 0 29 2 *", Utc(2026, 1, 1)), Utc(2028, 2, 29));
  absl::StatusOr<CronSchedule> never = CronSchedule::Parse("0 0 30 2 *");
  TDA_ASSERT_OK(never);
  EXPECT_THAT(never->Next(Utc(2026, 1, 1)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("never fires")));
}

TEST(CronTest, Nicknames) {
  EXPECT_EQ(NextOf("@daily", Utc(2026, 5, 5, 13)), Utc(2026, 5, 6));
  EXPECT_EQ(NextOf("@hourly", Utc(2026, 5, 5, 13, 1)), Utc(2026, 5, 5, 14));
  EXPECT_EQ(NextOf("@weekly", Utc(2026, 11, 25)), Utc(2026, 11, 29));
  EXPECT_EQ(NextOf("@monthly", Utc(2026, 11, 25)), Utc(2026, 12, 1));
  EXPECT_EQ(NextOf("@yearly", Utc(2026, 11, 25)), Utc(2027, 1, 1));
}

TEST(CronTest, SixFieldFormHasALeadingSecondsField) {
  EXPECT_EQ(NextOf("*/2 * * * * *", Utc(2026, 1, 1, 0, 0, 3)), Utc(2026, 1, 1, 0, 0, 4));
  EXPECT_EQ(NextOf("*/2 * * * * *", Utc(2026, 1, 1, 0, 0, 58)), Utc(2026, 1, 1, 0, 1, 0));
  EXPECT_EQ(NextOf("15 30 * * * *", Utc(2026, 1, 1, 0, 30, 15)), Utc(2026, 1, 1, 1, 30, 15));
  // The 5-field form fires at second 0 only.
  absl::StatusOr<CronSchedule> five = CronSchedule::Parse("* * * * *");
  TDA_ASSERT_OK(five);
  EXPECT_TRUE(five->Matches(Utc(2026, 1, 1, 0, 7, 0)));
  EXPECT_FALSE(five->Matches(Utc(2026, 1, 1, 0, 7, 1)));
}

TEST(CronTest, NextVisitsExactlyTheMatchingTimes) {
  // Over one day, the chain of Next() equals a scan of every minute with Matches().
  absl::StatusOr<CronSchedule> cron = CronSchedule::Parse("*/7 5-6,22 * * *");
  TDA_ASSERT_OK(cron);
  const int64_t start = Utc(2026, 6, 1);
  std::vector<int64_t> scanned, chained;
  for (int64_t t = start; t < start + 86400; t += 60) {
    if (cron->Matches(t)) scanned.push_back(t);
  }
  for (int64_t t = start - 1;;) {
    absl::StatusOr<int64_t> next = cron->Next(t);
    TDA_ASSERT_OK(next);
    if (*next >= start + 86400) break;
    chained.push_back(*next);
    t = *next;
  }
  EXPECT_EQ(chained, scanned);
  EXPECT_EQ(scanned.size(), 9u * 3);  // minutes 0, 7, ..., 56 of hours 5, 6 and 22
}

TEST(CronTest, MalformedExpressionsNameTheField) {
  struct Case {
    const char* expression;
    const char* message;
  };
  const Case cases[] = {
      {"* * * *", "has 4 fields"},
      {"* * * * * * *", "has 7 fields"},
      {"60 * * * *", "minute: 60 is outside 0-59"},
      {"* 24 * * *", "hour: 24 is outside 0-23"},
      {"* * 0 * *", "day of month: 0 is outside 1-31"},
      {"* * * 13 *", "month: 13 is outside 1-12"},
      {"* * * * 8", "day of week: 8 is outside 0-7"},
      {"*/0 * * * *", "minute: step '0'"},
      {"5-1 * * * *", "minute: range '5-1' runs backwards"},
      {"1,,2 * * * *", "minute: empty list item"},
      {"* * * foo *", "month: 'foo' is not a number or a name"},
      {"x * * * *", "minute: 'x' is not a number"},
      {"61 * * * * *", "second: 61 is outside 0-59"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expression);
    EXPECT_THAT(CronSchedule::Parse(c.expression),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
}

}  // namespace
}  // namespace tda
