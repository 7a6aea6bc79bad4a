// Hot reload of tda-server --repository, against the real binary over loopback: a new version
// dropped in while client threads query is verified and swapped in (found by the poller); every
// call succeeds, each answer is exactly one version's, calls after the swap get the new one,
// and the old version's files are unmapped by the server once its last call ends, so they can
// be deleted. A broken new version (one flipped byte in a shard, found on SIGHUP) never serves:
// the old one keeps answering and ListIndexes / DescribeIndex / `tda admin reload` report the
// failure naming the file; a name whose directory disappears is unloaded (NOT_FOUND). Once the
// broken version is fixed in place, the poller alone serves it (its directory's fingerprint
// changed), without re-verifying it at every poll before.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "attribution/attributor.h"
#include "client/remote_attributor.h"
#include "data/fashion_mnist.h"
#include "index/index_builder.h"
#include "repository_support.h"
#include "team_server.h"
#include "test_support.h"

namespace tda {
namespace {

namespace fs = std::filesystem;
using ::tda::testing::ChildProcess;
using ::tda::testing::StatusIs;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

const std::vector<Query> kQuery = {Query{"fashion-mnist/test/0", {}, -1, {}}};

AttributeOptions TopThree() {
  AttributeOptions options;
  options.top_k = 3;
  return options;
}

// The best proponent's score of kQuery, offline.
double OfflineTopScore(const std::string& index_dir) {
  absl::StatusOr<std::unique_ptr<Attributor>> attributor = Attributor::Open(index_dir);
  EXPECT_TRUE(attributor.ok()) << attributor.status();
  if (!attributor.ok()) return NAN;
  absl::StatusOr<std::vector<QueryResult>> results = (*attributor)->Attribute(kQuery, TopThree());
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? (*results)[0].proponents.at(0).score : NAN;
}

bool Near(double a, double b) { return std::abs(a - b) <= 1e-6 * std::abs(b); }

std::unique_ptr<RemoteAttributor> ConnectTo(const std::string& address) {
  RemoteAttributor::Options options;
  options.index_name = "fmnist";
  absl::StatusOr<std::unique_ptr<RemoteAttributor>> remote =
      RemoteAttributor::Connect(address, options);
  EXPECT_TRUE(remote.ok()) << remote.status();
  return remote.ok() ? std::move(*remote) : nullptr;
}

const v1::IndexVersionStatus* FindEntry(const v1::ListIndexesResponse& list, int64_t version) {
  for (const v1::IndexVersionStatus& entry : list.indexes()) {
    if (entry.name() == "fmnist" && entry.version() == version) return &entry;
  }
  return nullptr;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Flips one byte in the middle of `index_dir`'s gradient shard (sizes still match; a second
// flip restores it) and returns the shard's path.
std::string FlipShardByte(const std::string& index_dir) {
  std::string shard;
  for (const fs::directory_entry& entry : fs::directory_iterator(index_dir)) {
    if (entry.path().filename().string().rfind("grads-", 0) == 0) shard = entry.path().string();
  }
  EXPECT_FALSE(shard.empty());
  if (shard.empty()) return shard;
  std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(fs::file_size(shard) / 2));
  const char byte = static_cast<char>(file.get() ^ 0x5a);
  file.seekp(static_cast<std::streamoff>(fs::file_size(shard) / 2));
  file.put(byte);
  return shard;
}

// GET of `url` (the server's /metrics) through python3's urllib; "" on an error.
std::string Scrape(const std::string& url) {
  return testing::Shell(
             "python3 -c 'import sys, urllib.request; "
             "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' " +
             url)
      .stdout_text;
}

TEST(RepositoryReload, NewVersionSwapsInWhileClientsQuery) {
  testing::TempDir dir;
  absl::StatusOr<std::string> first = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(first);
  // Version 2: the same model indexed with another projection, so its scores differ.
  IndexBuildOptions build;
  build.model_dir = dir.file("model");
  build.out_dir = dir.file("index-v2");
  build.projection_dim_per_side = 8;
  TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(300), kFashionMnistDefaultDir, build));
  const double v1_score = OfflineTopScore(*first), v2_score = OfflineTopScore(build.out_dir);
  ASSERT_FALSE(Near(v1_score, v2_score));

  const std::string repository = dir.file("repository");
  absl::StatusOr<std::string> v1_dir = testing::AddVersion(repository, "fmnist", 1, *first);
  TDA_ASSERT_OK(v1_dir);
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      testing::StartRepositoryServer(repository, {"--repository-poll-seconds", "0.2"}, &address);
  TDA_ASSERT_OK(server);
  const pid_t pid = (*server)->pid();
  std::unique_ptr<RemoteAttributor> remote = ConnectTo(address);
  ASSERT_NE(remote, nullptr);
  ASSERT_FALSE(testing::MappedFilesContaining(pid, *v1_dir + "/").empty());

  struct Answer {
    Clock::time_point start;
    absl::Status status;
    double top_score = NAN;
  };
  std::mutex answers_mu;
  std::vector<Answer> answers;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        Answer answer{Clock::now(), absl::OkStatus()};
        absl::StatusOr<std::vector<QueryResult>> results = remote->Attribute(kQuery, TopThree());
        answer.status = results.status();
        if (results.ok()) answer.top_score = (*results)[0].proponents.at(0).score;
        std::lock_guard<std::mutex> lock(answers_mu);
        answers.push_back(answer);
      }
    });
  }
  // Version 1 has answered a few calls before version 2 arrives.
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(answers_mu);
        return answers.size() >= 8;
      },
      60));
  const Clock::time_point dropped = Clock::now();
  TDA_ASSERT_OK(testing::AddVersion(repository, "fmnist", 2, build.out_dir));
  Clock::time_point swapped;
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        absl::StatusOr<v1::DescribeIndexResponse> description = remote->Describe();
        swapped = Clock::now();
        return description.ok() && description->version() == 2;
      },
      60));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (std::thread& client : clients) client.join();

  int v1_answers = 0, v2_answers = 0;
  for (const Answer& answer : answers) {
    ASSERT_TRUE(answer.status.ok()) << answer.status;
    const bool old_version = Near(answer.top_score, v1_score);
    ASSERT_TRUE(old_version || Near(answer.top_score, v2_score)) << answer.top_score;
    old_version ? ++v1_answers : ++v2_answers;
    if (answer.start > swapped) {
      EXPECT_FALSE(old_version) << "a call after the swap got v1";
    }
  }
  EXPECT_GT(v1_answers, 0);
  EXPECT_GT(v2_answers, 0);

  // The old version closes with its last call: the server maps none of its files, and they
  // can go.
  const Clock::time_point swap_seen = Clock::now();
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return testing::MappedFilesContaining(pid, *v1_dir + "/").empty(); }, 10))
      << testing::MappedFilesContaining(pid, *v1_dir + "/").at(0);
  std::printf(
      "swap: version 2 served %.3f s after it was dropped in (poll every 0.2 s, open "
      "and verify included); version 1 unmapped %.3f s after the swap was seen; %d "
      "calls answered by v1, %d by v2, none failed\n",
      Seconds(swapped - dropped), Seconds(Clock::now() - swap_seen), v1_answers, v2_answers);
  ASSERT_TRUE(testing::MappedFilesContaining(pid, *v1_dir + "/").empty());
  fs::remove_all(*v1_dir);
  ASSERT_FALSE(fs::exists(*v1_dir));
  absl::StatusOr<std::vector<QueryResult>> after = remote->Attribute(kQuery, TopThree());
  TDA_ASSERT_OK(after);
  EXPECT_TRUE(Near((*after)[0].proponents.at(0).score, v2_score));
  absl::StatusOr<v1::ListIndexesResponse> list = remote->ListIndexes();
  TDA_ASSERT_OK(list);
  ASSERT_EQ(list->indexes_size(), 1);
  EXPECT_EQ(list->indexes(0).version(), 2);
  EXPECT_EQ(list->indexes(0).state(), v1::IndexVersionStatus::SERVING);
}

TEST(RepositoryReload, BrokenVersionNeverServes) {
  testing::TempDir dir;
  absl::StatusOr<std::string> good = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(good);
  const std::string repository = dir.file("repository");
  TDA_ASSERT_OK(testing::AddVersion(repository, "fmnist", 1, *good));
  // Version 2: the same files with one byte of a gradient shard flipped (sizes still match).
  const std::string broken = dir.file("broken");
  fs::copy(*good, broken, fs::copy_options::recursive);
  const std::string shard = FlipShardByte(broken);
  ASSERT_FALSE(shard.empty());
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      testing::StartRepositoryServer(repository, {"--repository-poll-seconds", "0"}, &address);
  TDA_ASSERT_OK(server);
  std::unique_ptr<RemoteAttributor> remote = ConnectTo(address);
  ASSERT_NE(remote, nullptr);
  absl::StatusOr<std::vector<QueryResult>> before = remote->Attribute(kQuery, TopThree());
  TDA_ASSERT_OK(before);

  TDA_ASSERT_OK(testing::AddVersion(repository, "fmnist", 2, broken));
  (*server)->Signal(SIGHUP);  // rescan now (polling is off)
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        absl::StatusOr<v1::ListIndexesResponse> list = remote->ListIndexes();
        return list.ok() && FindEntry(*list, 2) != nullptr &&
               FindEntry(*list, 2)->state() == v1::IndexVersionStatus::FAILED;
      },
      60));
  absl::StatusOr<v1::ListIndexesResponse> list = remote->ListIndexes();
  TDA_ASSERT_OK(list);
  const std::string shard_name = fs::path(shard).filename().string();
  EXPECT_THAT(FindEntry(*list, 2)->message(), HasSubstr(shard_name));
  ASSERT_NE(FindEntry(*list, 1), nullptr);
  EXPECT_EQ(FindEntry(*list, 1)->state(), v1::IndexVersionStatus::SERVING);
  absl::StatusOr<v1::DescribeIndexResponse> description = remote->Describe();
  TDA_ASSERT_OK(description);
  EXPECT_EQ(description->version(), 1);
  EXPECT_EQ(description->failed_version(), 2);
  EXPECT_THAT(description->failed_version_message(), HasSubstr(shard_name));
  absl::StatusOr<std::vector<QueryResult>> after = remote->Attribute(kQuery, TopThree());
  TDA_ASSERT_OK(after);
  EXPECT_EQ((*after)[0].proponents.at(0).score, (*before)[0].proponents.at(0).score);
  EXPECT_EQ(*remote->CheckHealth(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_TRUE(testing::MappedFilesContaining((*server)->pid(), "/fmnist/2/").empty());

  // `tda admin reload` retries it (still broken) and reports each version.
  const std::string reload = std::string(TDA_CLI_BINARY) + " admin reload --server " + address;
  testing::CommandResult reloaded = testing::Shell(reload);
  EXPECT_EQ(reloaded.exit_code, 0) << reloaded.stdout_text;
  EXPECT_THAT(reloaded.stdout_text, HasSubstr("index fmnist version 2: FAILED"));
  EXPECT_THAT(reloaded.stdout_text, HasSubstr("index fmnist version 1: SERVING"));

  // The name's directory goes: it is unloaded, its files closed.
  fs::remove_all(repository + "/fmnist");
  reloaded = testing::Shell(reload);
  EXPECT_THAT(reloaded.stdout_text, HasSubstr("index fmnist version 1: UNLOADED"));
  EXPECT_THAT(remote->Attribute(kQuery, TopThree()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("served: none")));
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return testing::MappedFilesContaining((*server)->pid(), repository).empty(); }, 10));
}

// The poller alone retries a failed version once its files changed: the broken copy is
// verified once (not again at every poll, as the load counter shows), then fixed in place and
// served, without SIGHUP or an admin call.
TEST(RepositoryReload, PollerPicksUpAFixedVersion) {
  testing::TempDir dir;
  absl::StatusOr<std::string> good = testing::BuildSmallIndex(dir.path());
  TDA_ASSERT_OK(good);
  const std::string repository = dir.file("repository");
  TDA_ASSERT_OK(testing::AddVersion(repository, "fmnist", 1, *good));
  const std::string broken = dir.file("broken");
  fs::copy(*good, broken, fs::copy_options::recursive);
  ASSERT_FALSE(FlipShardByte(broken).empty());
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = testing::StartRepositoryServer(
      repository, {"--repository-poll-seconds", "0.1", "--metrics-listen", "127.0.0.1:0"},
      &address);
  TDA_ASSERT_OK(server);
  absl::StatusOr<std::string> line = (*server)->ReadLineContaining("tda-server metrics on ", 30);
  TDA_ASSERT_OK(line);
  const std::string url = line->substr(line->rfind(' ') + 1);
  std::unique_ptr<RemoteAttributor> remote = ConnectTo(address);
  ASSERT_NE(remote, nullptr);

  absl::StatusOr<std::string> v2_dir = testing::AddVersion(repository, "fmnist", 2, broken);
  TDA_ASSERT_OK(v2_dir);
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        absl::StatusOr<v1::ListIndexesResponse> list = remote->ListIndexes();
        return list.ok() && FindEntry(*list, 2) != nullptr &&
               FindEntry(*list, 2)->state() == v1::IndexVersionStatus::FAILED;
      },
      60));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // 10 polls
  const std::string failed_once = R"(tda_index_loads_total{index="fmnist",result="failed"} 1)";
  EXPECT_THAT(Scrape(url), HasSubstr(failed_once));

  FlipShardByte(*v2_dir);  // fixed in place
  const Clock::time_point fixed = Clock::now();
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        absl::StatusOr<v1::DescribeIndexResponse> description = remote->Describe();
        return description.ok() && description->version() == 2;
      },
      60));
  std::printf("fixed version 2 served %.3f s after the fix (poll every 0.1 s, verify included)\n",
              Seconds(Clock::now() - fixed));
  const std::string metrics = Scrape(url);
  EXPECT_THAT(metrics, HasSubstr(failed_once));
  EXPECT_THAT(metrics, HasSubstr(R"(tda_index_loads_total{index="fmnist",result="ok"} 2)"));
  EXPECT_THAT(metrics, HasSubstr(R"(tda_index_swaps_total{index="fmnist"} 1)"));
  TDA_ASSERT_OK(remote->Attribute(kQuery, TopThree()));
}

}  // namespace
}  // namespace tda
