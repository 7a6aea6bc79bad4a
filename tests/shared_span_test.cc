// LongestSharedSpan: the verbatim-overlap measure of the parroting check, against a brute-force
// search over every pair of substrings on seeded random texts.
#include "attribution/shared_span.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace tda {
namespace {

int64_t BruteForceLongest(const std::string& a, const std::string& b) {
  int64_t best = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b.size(); ++j) {
      int64_t k = 0;
      while (i + k < a.size() && j + k < b.size() && a[i + k] == b[j + k]) ++k;
      best = std::max(best, k);
    }
  return best;
}

TEST(SharedSpan, FindsTheQuotedSentence) {
  const std::string doc = "Q: What's the difference between a duck? A: One leg is both the same.";
  const std::string completion = "he said: One leg is both the same, obviously";
  const SharedSpan span = LongestSharedSpan(completion, doc);
  EXPECT_EQ(completion.substr(span.query_offset, span.length), ": One leg is both the same");
  EXPECT_EQ(doc.substr(span.document_offset, span.length), ": One leg is both the same");
}

TEST(SharedSpan, EmptyAndDisjointTextsShareNothing) {
  EXPECT_EQ(LongestSharedSpan("", "abc").length, 0);
  EXPECT_EQ(LongestSharedSpan("abc", "").length, 0);
  EXPECT_EQ(LongestSharedSpan("abc", "xyz").length, 0);
}

TEST(SharedSpan, MatchesBruteForceOnRandomTexts) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> letter(0, 2), size(0, 40);
  for (int trial = 0; trial < 300; ++trial) {
    std::string a(size(rng), 'a'), b(size(rng), 'a');
    for (char& c : a) c = static_cast<char>('a' + letter(rng));
    for (char& c : b) c = static_cast<char>('a' + letter(rng));
    const SharedSpan span = LongestSharedSpan(a, b);
    ASSERT_EQ(span.length, BruteForceLongest(a, b)) << a << " / " << b;
    EXPECT_EQ(a.substr(span.query_offset, span.length), b.substr(span.document_offset, span.length));
  }
}

}  // namespace
}  // namespace tda
