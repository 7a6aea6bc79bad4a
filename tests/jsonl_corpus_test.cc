// JSONL corpora (data/jsonl_corpus.h) on the real fortunes: the fortunes exported to JSONL
// (plain, gzip, Zstandard) give the same rows as the fortunes reader; instruction pairs carry
// loss on the completion only; every kind of bad line is refused naming its file and line, or
// skipped and counted; bytes that are not UTF-8 survive a round trip.
#include "data/jsonl_corpus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "data/byte_tokenizer.h"
#include "data/fortunes.h"
#include "data/line_reader.h"
#include "data/utf8_escape.h"
#include "test_support.h"

namespace tda {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;
using testing::TempDir;

void Gzip(const std::string& text, const std::string& path) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

void Zstd(const std::string& text, const std::string& path) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3);
  ASSERT_FALSE(ZSTD_isError(n));
  out.resize(n);
  testing::WriteText(path, out);
}

JsonlOptions FileOptions(const std::string& path) {
  JsonlOptions options;
  options.paths = {path};
  return options;
}

absl::StatusOr<std::vector<TextDocument>> ReadAllDocuments(const JsonlOptions& options,
                                                           JsonlStats* stats = nullptr) {
  std::vector<TextDocument> docs;
  absl::Status status = ReadJsonlDocuments(
      options,
      [&docs](TextDocument&& doc) {
        docs.push_back(std::move(doc));
        return absl::OkStatus();
      },
      stats);
  if (!status.ok()) return status;
  return docs;
}

void ExpectSameRows(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.sequence_length, b.sequence_length);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.sources, b.sources);
  EXPECT_EQ(a.previews, b.previews);
  EXPECT_TRUE(a.tokens == b.tokens) << "token rows differ";
  EXPECT_TRUE(a.targets == b.targets) << "target rows differ";
}

TEST(JsonlCorpusTest, FortunesExportedToJsonlGiveTheSameRowsPlainGzipAndZstd) {
  absl::StatusOr<std::vector<TextDocument>> fortunes = ReadFortunes(kFortunesDefaultDir);
  TDA_ASSERT_OK(fortunes);
  ASSERT_GT(fortunes->size(), 10000u);
  TempDir dir;
  // Named "fortunes" so the data set names agree too ("fortunes/train").
  const std::string plain = dir.file("fortunes.jsonl");
  TDA_ASSERT_OK(WriteJsonl(*fortunes, plain));
  Gzip(testing::ReadText(plain), dir.file("fortunes.jsonl.gz"));
  Zstd(testing::ReadText(plain), dir.file("fortunes.jsonl.zst"));

  TextSplitOptions split;
  split.context_length = 128;
  int64_t truncated_fortunes = 0;
  absl::StatusOr<Dataset> expected =
      LoadFortunes(kFortunesDefaultDir, Split::kTrain, split, &truncated_fortunes);
  TDA_ASSERT_OK(expected);
  for (const std::string& file :
       {plain, dir.file("fortunes.jsonl.gz"), dir.file("fortunes.jsonl.zst")}) {
    SCOPED_TRACE(file);
    int64_t truncated = 0;
    JsonlStats stats;
    absl::StatusOr<Dataset> jsonl =
        LoadJsonl(FileOptions(file), Split::kTrain, split, &truncated, &stats);
    TDA_ASSERT_OK(jsonl);
    ExpectSameRows(*expected, *jsonl);
    EXPECT_EQ(truncated, truncated_fortunes);
    EXPECT_EQ(stats.documents, static_cast<int64_t>(fortunes->size()));
    EXPECT_EQ(stats.skipped_lines, 0);
  }
  absl::StatusOr<Dataset> held_out = LoadJsonl(FileOptions(plain), Split::kTest, split);
  absl::StatusOr<Dataset> held_out_fortunes =
      LoadFortunes(kFortunesDefaultDir, Split::kTest, split);
  TDA_ASSERT_OK(held_out);
  TDA_ASSERT_OK(held_out_fortunes);
  ExpectSameRows(*held_out_fortunes, *held_out);
}

TEST(JsonlCorpusTest, InstructionPairsCarryLossOnTheCompletionOnly) {
  TempDir dir;
  // Real riddles from the fortunes, as instruction pairs.
  const std::string path = dir.file("riddles.jsonl");
  testing::WriteText(path,
            "{\"prompt\": \"Q:\\tWhat do you call a boomerang that doesn't come back?\\nA:\\t\", "
            "\"completion\": \"A stick.\\n\"}\n"
            "{\"prompt\": \"Q:\\tWhat's tiny and yellow and very, very, dangerous?\\nA:\\t\", "
            "\"completion\": \"A canary with the super-user password.\\n\", \"id\": 7}\n");
  JsonlOptions options = FileOptions(path);
  options.prompt_field = "prompt";
  options.completion_field = "completion";
  absl::StatusOr<std::vector<TextDocument>> docs = ReadAllDocuments(options);
  TDA_ASSERT_OK(docs);
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0].id, "riddles:1");  // no id field: file:line
  EXPECT_EQ((*docs)[1].id, "7");          // integer ids become strings
  EXPECT_EQ((*docs)[0].source, "riddles");
  const std::string prompt = "Q:\tWhat do you call a boomerang that doesn't come back?\nA:\t";
  EXPECT_EQ((*docs)[0].prompt_bytes, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ((*docs)[0].text, prompt + "A stick.\n");

  // The row has the same targets as a query of the same prompt and completion.
  absl::StatusOr<Dataset> rows = DocumentsToDataset(*docs, "riddles", 128);
  TDA_ASSERT_OK(rows);
  const Dataset& data = *rows;
  std::vector<int32_t> tokens, targets;
  TDA_ASSERT_OK(MakeCompletionRow(prompt, "A stick.\n", 128, &tokens, &targets));
  for (size_t t = 0; t < targets.size(); ++t) {
    EXPECT_EQ(data.targets[t], targets[t]) << "position " << t;
    EXPECT_EQ(data.tokens[t], tokens[t]) << "position " << t;
  }
  EXPECT_EQ(data.targets[prompt.size() - 1], kNoTarget);
  EXPECT_NE(data.targets[prompt.size()], kNoTarget);
}

TEST(JsonlCorpusTest, BadLinesAreRefusedNamingFileAndLine) {
  TempDir dir;
  const std::string good = "{\"id\": \"a\", \"text\": \"Bad command or file name.\"}\n";
  struct Case {
    std::string name, line, message;
  };
  const std::vector<Case> cases = {
      {"malformed", "{\"id\": \"b\", \"text\": \"Hello\"\n", "bad.jsonl:2: not valid JSON"},
      {"not an object", "[\"text\"]\n", "bad.jsonl:2: not a JSON object (array)"},
      {"missing text", "{\"id\": \"b\", \"body\": \"x\"}\n", "bad.jsonl:2: no field 'text'"},
      {"number text", "{\"id\": \"b\", \"text\": 42}\n",
       "bad.jsonl:2: field 'text' is number, not a string"},
      {"empty", "{\"id\": \"b\", \"text\": \"  \\n\"}\n", "bad.jsonl:2: empty document"},
      {"bad id", "{\"id\": [1], \"text\": \"x\"}\n", "field 'id' is array"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file("bad.jsonl");
    testing::WriteText(path, good + c.line);
    EXPECT_THAT(ReadAllDocuments(FileOptions(path)).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }

  const std::string path = dir.file("dup.jsonl");
  testing::WriteText(path, good + "\n" + "{\"id\": \"z\", \"text\": \"x\"}\n" + good);
  EXPECT_THAT(ReadAllDocuments(FileOptions(path)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("duplicate id 'a': " + path + ":1 and " + path + ":4")));

  // --skip-bad-lines: bad lines skipped and counted, the reasons kept; duplicates still refused.
  const std::string mixed = dir.file("mixed.jsonl");
  testing::WriteText(mixed,
            good + "{oops\n" + "{\"id\": \"c\", \"text\": 3}\n" +
                "{\"id\": \"d\", \"text\": \"Real programmers don't comment their code.\"}\n");
  JsonlOptions skip = FileOptions(mixed);
  skip.skip_bad_lines = true;
  JsonlStats stats;
  absl::StatusOr<std::vector<TextDocument>> docs = ReadAllDocuments(skip, &stats);
  TDA_ASSERT_OK(docs);
  EXPECT_EQ(docs->size(), 2u);
  EXPECT_EQ(stats.skipped_lines, 2);
  ASSERT_EQ(stats.skipped.size(), 2u);
  EXPECT_THAT(stats.skipped[0], HasSubstr("mixed.jsonl:2: not valid JSON"));
  EXPECT_THAT(stats.skipped[1], HasSubstr("mixed.jsonl:3: field 'text' is number"));
}

TEST(JsonlCorpusTest, InvalidUtf8IsKeptAsBytesCountedAndRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("latin1.jsonl");
  // "caf\xe9" is Latin-1, not UTF-8; "\xc3\xa9" is a valid UTF-8 e-acute.
  testing::WriteText(path, "{\"id\": \"x\", \"text\": \"caf\xe9 cr\xc3\xa9me \xff\xfe\"}\n");
  JsonlStats stats;
  absl::StatusOr<std::vector<TextDocument>> docs = ReadAllDocuments(FileOptions(path), &stats);
  TDA_ASSERT_OK(docs);
  ASSERT_EQ(docs->size(), 1u);
  EXPECT_EQ((*docs)[0].text, "caf\xe9 cr\xc3\xa9me \xff\xfe");
  EXPECT_EQ(stats.invalid_utf8_bytes, 3);
  EXPECT_EQ(stats.documents_with_invalid_utf8, 1);

  const std::string again = dir.file("again.jsonl");
  TDA_ASSERT_OK(WriteJsonl(*docs, again));
  absl::StatusOr<std::vector<TextDocument>> back = ReadAllDocuments(FileOptions(again));
  TDA_ASSERT_OK(back);
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].text, (*docs)[0].text);

  std::string escaped;
  EXPECT_EQ(EscapeInvalidUtf8("\xed\xa0\x80 \xc0\xaf ok \xf4\x90\x80\x80", &escaped), 9)
      << "surrogates, overlong forms and code points past U+10FFFF are not UTF-8";
  UnescapeInvalidUtf8(&escaped);
  EXPECT_EQ(escaped, "\xed\xa0\x80 \xc0\xaf ok \xf4\x90\x80\x80");
}

TEST(JsonlCorpusTest, SourcesComeFromAFieldOrTheFileName) {
  TempDir dir;
  const std::string a = dir.file("linux.jsonl"), b = dir.file("science.jsonl.gz");
  testing::WriteText(a,
            "{\"text\": \"Linux: the choice of a GNU generation\", \"source\": \"debian\"}\n"
            "{\"text\": \"Microsoft is not the answer.\"}\r\n");
  Gzip("{\"text\": \"E = mc^2\", \"id\": \"einstein\"}", b);  // no final newline
  JsonlOptions options;
  options.paths = {a, b};
  absl::StatusOr<std::vector<TextDocument>> docs = ReadAllDocuments(options);
  TDA_ASSERT_OK(docs);
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ((*docs)[0].source, "debian");
  EXPECT_EQ((*docs)[1].source, "linux");
  EXPECT_EQ((*docs)[1].text, "Microsoft is not the answer.");  // the line's \r\n is not text
  EXPECT_EQ((*docs)[2].source, "science");
  EXPECT_EQ((*docs)[2].id, "einstein");
  options.source_from_file = true;
  docs = ReadAllDocuments(options);
  TDA_ASSERT_OK(docs);
  EXPECT_EQ((*docs)[0].source, "linux");
}

TEST(JsonlCorpusTest, DamagedAndMissingFilesAreClearErrors) {
  TempDir dir;
  EXPECT_THAT(ReadAllDocuments(FileOptions(dir.file("absent.jsonl"))).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.jsonl")));
  testing::WriteText(dir.file("plain.jsonl.gz"), "{\"text\": \"not compressed\"}\n");
  EXPECT_THAT(ReadAllDocuments(FileOptions(dir.file("plain.jsonl.gz"))).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not gzip data")));

  std::string lines;
  for (int i = 0; i < 2000; ++i)
    lines += "{\"text\": \"Never trust a computer you can't lift.\"}\n";
  Zstd(lines, dir.file("full.jsonl.zst"));
  const std::string compressed = testing::ReadText(dir.file("full.jsonl.zst"));
  testing::WriteText(dir.file("cut.jsonl.zst"), compressed.substr(0, compressed.size() / 2));
  EXPECT_THAT(ReadAllDocuments(FileOptions(dir.file("cut.jsonl.zst"))).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  Gzip(lines, dir.file("full.jsonl.gz"));
  const std::string gz = testing::ReadText(dir.file("full.jsonl.gz"));
  testing::WriteText(dir.file("cut.jsonl.gz"), gz.substr(0, gz.size() / 2));
  EXPECT_THAT(ReadAllDocuments(FileOptions(dir.file("cut.jsonl.gz"))).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("cut.jsonl.gz")));

  testing::WriteText(dir.file("long.jsonl"), "{}\n" + std::string(5000, 'x') + "\n");
  absl::StatusOr<std::unique_ptr<LineReader>> reader =
      LineReader::Open(dir.file("long.jsonl"), 1000);
  TDA_ASSERT_OK(reader);
  std::string line;
  EXPECT_TRUE(*(*reader)->Next(&line));
  EXPECT_THAT((*reader)->Next(&line).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("long.jsonl:2: line longer")));
}

}  // namespace
}  // namespace tda
