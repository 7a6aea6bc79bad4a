// A language-model index end to end: a byte-level GPT trained for real on fortunes (the tiny
// recipe, through the tda CLI), its index built by `tda index build`, then a text query
// (prompt + completion) through the real tda-server must return what the offline Attributor
// and the offline CLI return.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "attribution/attributor.h"
#include "child_process.h"
#include "client/remote_attributor.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;
using ::testing::HasSubstr;

TEST(GptServer, TextQueryThroughServerEqualsOffline) {
  testing::TempDir dir;
  auto run = [&](const std::vector<std::string>& argv) {
    absl::StatusOr<testing::CommandResult> result = testing::RunCommand(argv, 300);
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result.ok() ? result->exit_code : -1, 0) << argv[1];
    return result.ok() ? result->stdout_text : std::string();
  };
  const std::string model = dir.file("model"), index = dir.file("index");
  EXPECT_THAT(run({TDA_CLI_BINARY, "train", "--model-kind", "gpt", "--recipe", "tiny", "--out",
                   model, "--threads", "1"}),
              HasSubstr("held-out loss"));
  EXPECT_THAT(run({TDA_CLI_BINARY, "index", "build", "--model", model, "--out", index,
                   "--projection-dim", "8", "--threads", "1"}),
              HasSubstr("400 rows"));
  const std::string completion = run({TDA_CLI_BINARY, "generate", "--model", model, "--prompt",
                                      "The ", "--max-tokens", "20", "--seed", "1"});
  ASSERT_FALSE(completion.empty());

  absl::StatusOr<std::unique_ptr<Attributor>> offline = Attributor::Open(index);
  TDA_ASSERT_OK(offline);
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = ChildProcess::Start(
      {TDA_SERVER_BINARY, "--index", index, "--listen", "127.0.0.1:0", "--threads", "1"});
  TDA_ASSERT_OK(server);
  absl::StatusOr<std::string> line = (*server)->ReadLineContaining("tda-server listening on ", 120);
  TDA_ASSERT_OK(line);
  const std::string address = line->substr(line->rfind(' ') + 1);
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote = RemoteAttributor::Connect(address);
  TDA_ASSERT_OK(remote);

  Query query;
  query.text = TextQuery{"Q: Why did the chicken cross?\n", "A: To get to the other side."};
  AttributeOptions options;
  options.top_k = 5;
  auto want = (*offline)->Attribute({query}, options);
  auto got = (*remote)->Attribute({query}, options);
  TDA_ASSERT_OK(want);
  TDA_ASSERT_OK(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].query_id, "text:0");
  EXPECT_NEAR((*got)[0].loss, (*want)[0].loss, 1e-4);
  EXPECT_GT((*want)[0].loss, 0);
  ASSERT_EQ((*got)[0].proponents.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    const Hit& g = (*got)[0].proponents[i];
    const Hit& w = (*want)[0].proponents[i];
    EXPECT_EQ(g.id, w.id) << "rank " << i;
    EXPECT_EQ(g.source, w.source);
    EXPECT_EQ(g.preview, w.preview);
    EXPECT_FALSE(g.preview.empty());
    EXPECT_EQ(g.id.rfind("fortunes/" + g.source + "/", 0), 0u) << g.id;
    EXPECT_NEAR(g.score, w.score, 1e-6 * (1 + std::abs(w.score)));
    EXPECT_EQ((*got)[0].opponents[i].id, (*want)[0].opponents[i].id);
  }
  // Per-document totals (the tiny recipe chunks documents longer than its context of 64) come
  // through the server as computed offline.
  options.group_by_document = true;
  want = (*offline)->Attribute({query}, options);
  got = (*remote)->Attribute({query}, options);
  TDA_ASSERT_OK(want);
  TDA_ASSERT_OK(got);
  ASSERT_FALSE((*want)[0].proponent_documents.empty());
  ASSERT_EQ((*got)[0].proponent_documents.size(), (*want)[0].proponent_documents.size());
  for (size_t i = 0; i < (*want)[0].proponent_documents.size(); ++i) {
    const DocumentTotal& g = (*got)[0].proponent_documents[i];
    const DocumentTotal& w = (*want)[0].proponent_documents[i];
    EXPECT_EQ(g.document_id, w.document_id) << "rank " << i;
    EXPECT_EQ(g.chunks, w.chunks);
    EXPECT_EQ(g.best_row_id, w.best_row_id);
    EXPECT_NEAR(g.sum, w.sum, 1e-6 * (1 + std::abs(w.sum)));
  }
  options.group_by_document = false;

  // Classification queries are refused by a language-model index, naming the mismatch, and
  // the server goes on.
  EXPECT_THAT((*remote)->Attribute({Query{"fortunes/art/0", {}, -1, {}}}, options),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::AllOf(HasSubstr("gpt language model"),
                                                 HasSubstr("text queries"),
                                                 HasSubstr("sample-id query needs an image"))));
  EXPECT_THAT((*remote)->Attribute({Query{"", std::vector<float>(784, 0.5f), 1, {}}}, options),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::AllOf(HasSubstr("gpt language model"),
                                                 HasSubstr("raw-features query needs an image"))));

  // The CLI gives the same table offline and through the server.
  const std::vector<std::string> ask = {"--prompt", "The ", "--completion", completion,
                                        "--top-k",  "3",    "--by-document"};
  std::vector<std::string> offline_cli = {TDA_CLI_BINARY, "query", "--index", index};
  std::vector<std::string> remote_cli = {TDA_CLI_BINARY, "query", "--server", address};
  offline_cli.insert(offline_cli.end(), ask.begin(), ask.end());
  remote_cli.insert(remote_cli.end(), ask.begin(), ask.end());
  const std::string table = run(offline_cli);
  EXPECT_THAT(table, HasSubstr("completion loss"));
  EXPECT_THAT(table, HasSubstr("fortunes/"));
  EXPECT_THAT(table, HasSubstr("proponent documents"));
  EXPECT_EQ(run(remote_cli), table);
}

}  // namespace
}  // namespace tda
