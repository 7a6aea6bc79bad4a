// Chunk windows of long documents (data/chunking.h): counts, loss ownership,
// and that a document that fits gives exactly the row WriteDocumentRow gives.
#include "data/chunking.h"

#include <string>
#include <vector>

#include "data/byte_tokenizer.h"
#include "data/fortunes.h"
#include "gtest/gtest.h"

namespace tda {
namespace {

// The text of every fortune (a test failure when the corpus cannot be read).
std::vector<std::string> FortuneTexts() {
  std::vector<std::string> texts;
  absl::StatusOr<std::vector<TextDocument>> docs = ReadFortunes(kFortunesDefaultDir);
  EXPECT_TRUE(docs.ok()) << docs.status();
  if (!docs.ok()) return texts;
  for (const TextDocument &doc : *docs) texts.push_back(doc.text);
  return texts;
}

TEST(ChunkWindowsTest, CountsAndLossOwnershipOverEveryFortune) {
  const std::vector<int64_t> contexts = {16, 64, 256};
  for (const std::string &text : FortuneTexts()) {
    const int64_t positions = static_cast<int64_t>(text.size()) + 1;
    for (int64_t context : contexts) {
      for (int64_t stride : {context, context / 2, int64_t{1} + context / 3}) {
        const std::vector<ChunkWindow> windows = ChunkWindows(positions, context, stride);
        const int64_t expected =
            positions <= context ? 1 : 1 + (positions - context + stride - 1) / stride;
        ASSERT_EQ(static_cast<int64_t>(windows.size()), expected) << positions << " " << stride;
        // Every position carries loss in exactly one window, in order.
        int64_t next = 0;
        for (const ChunkWindow &w : windows) {
          ASSERT_LE(w.end - w.begin, context);
          ASSERT_EQ(w.loss_begin, next);
          ASSERT_LT(w.loss_begin, w.end);
          next = w.end;
        }
        ASSERT_EQ(next, positions);
      }
    }
  }
}

TEST(ChunkWindowsTest, OneWindowRowEqualsTheDocumentRow) {
  for (const std::string &text : FortuneTexts()) {
    const int64_t context = 300;
    const int64_t n = static_cast<int64_t>(text.size());
    const std::vector<int32_t> doc = EncodeBytes(text);
    for (int64_t stride : {int64_t{0}, context}) {
      const std::vector<ChunkWindow> windows = ChunkWindows(n + 1, context, stride);
      if (stride > 0 && windows.size() != 1) continue;
      std::vector<int32_t> tokens(context), targets(context), want_tokens(context),
          want_targets(context);
      WriteChunkRow(doc.data(), n, windows[0], context, 0, kEndOfDocument, tokens.data(),
                    targets.data());
      WriteDocumentRow(text, context, want_tokens.data(), want_targets.data());
      ASSERT_EQ(tokens, want_tokens);
      ASSERT_EQ(targets, want_targets);
    }
  }
}

TEST(ChunkWindowsTest, ChunkRowsPredictTheDocumentsNextTokens) {
  const std::string text = "The quick brown fox jumps over the lazy dog.";
  const std::vector<int32_t> doc = EncodeBytes(text);
  const int64_t n = static_cast<int64_t>(doc.size());
  const int64_t context = 8;
  const std::vector<ChunkWindow> windows = ChunkWindows(n + 1, context, 5);
  std::vector<int32_t> scored;  // the targets with loss, over all windows in order
  for (const ChunkWindow &w : windows) {
    std::vector<int32_t> tokens(context), targets(context);
    WriteChunkRow(doc.data(), n, w, context, 3, kEndOfDocument, tokens.data(), targets.data());
    for (int64_t r = 0; r < context; ++r) {
      if (targets[r] >= 0) scored.push_back(targets[r]);
      if (r + 1 < context && targets[r] >= 0 && w.begin + r + 1 < w.end) {
        EXPECT_EQ(tokens[r + 1], targets[r]);  // the next input is this target
      }
    }
  }
  std::vector<int32_t> want(doc.begin() + 3,
                            doc.end());  // the prompt's 3 carry no loss
  want.push_back(kEndOfDocument);
  EXPECT_EQ(scored, want);
}

TEST(ChunkIdTest, SuffixesRoundTrip) {
  EXPECT_EQ(ChunkId("fortunes/art/12", 0, 1), "fortunes/art/12");
  EXPECT_EQ(ChunkId("fortunes/art/12", 3, 4), "fortunes/art/12#3");
  EXPECT_EQ(DocumentOfRow("fortunes/art/12#3"), "fortunes/art/12");
  EXPECT_EQ(DocumentOfRow("fortunes/art/12"), "fortunes/art/12");
  EXPECT_EQ(DocumentOfRow("#3"), "#3");
  EXPECT_EQ(DocumentOfRow("a#"), "a#");
  EXPECT_TRUE(LooksLikeChunkId("doc#7"));
  EXPECT_FALSE(LooksLikeChunkId("doc#x7"));
}

}  // namespace
}  // namespace tda
