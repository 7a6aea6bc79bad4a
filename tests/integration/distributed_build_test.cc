// Data-parallel index builds launched the way PyTorch users launch everything: Debian's torchrun
// (python3-torch) runs `tda index build` with --no_python, every rank a real process joined
// over c10d Gloo on loopback. A 2-rank and a 3-rank build of a model trained for real on
// Fashion-MNIST must equal the single-process build: rows and sample table bit-identical,
// factors to 1e-10 relative, the same manifest apart from how the rows are cut into shard files.
// Killing rank 1 mid-build leaves no index that opens; a rerun over the same directory
// completes and equals the single-process build.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "child_process.h"
#include "curvature/ekfac.h"
#include "index/manifest.h"
#include "model/model.h"
#include "test_support.h"

namespace tda {
namespace {

using ::tda::testing::ChildProcess;
using ::tda::testing::RunCommand;

constexpr int64_t kTrainSize = 3000;

// A TCP port free on loopback now (the kernel's choice for port 0).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

// `tda index build` of the fixture's model into `out`, under torchrun with `ranks` processes
// (0: no torchrun, one process). `tag` is put in the ranks' environment, to find them.
std::vector<std::string> BuildCommand(const std::string& model, const std::string& out, int ranks,
                                      const std::string& logs, const std::string& tag = "none") {
  std::vector<std::string> argv = {"/usr/bin/env", "TDA_TEST_TAG=" + tag, "OMP_NUM_THREADS=1"};
  if (ranks > 0) {
    // Debian 12's torchrun (1.13 on Python 3.11) needs non-zero --redirects and --tee.
    argv.insert(argv.end(), {TDA_TORCHRUN, "--no_python", "--nproc_per_node", std::to_string(ranks),
                             "--master_port", std::to_string(FreePort()),
                             // the agent notices exited ranks within 0.1 s, not its default 5 s
                             "--monitor_interval", "0.1", "--redirects", "2",
                             "--tee", "2", "--log_dir", logs});
  }
  argv.insert(argv.end(),
              {TDA_CLI_BINARY, "index", "build", "--model", model, "--out", out, "--batch-size",
               "128", "--projection-dim", "8", "--threads", "1", "--rendezvous-timeout", "60"});
  return argv;
}

Manifest ReadManifest(const std::string& index) {
  absl::StatusOr<Manifest> manifest =
      ManifestFromJson(testing::ReadText(index + "/manifest.json"), index);
  EXPECT_TRUE(manifest.ok()) << manifest.status();
  return manifest.ok() ? *manifest : Manifest();
}

// Every row of the index, as stored, in row order.
std::string RowBytes(const std::string& index, const Manifest& manifest) {
  std::string rows;
  for (const ShardEntry& shard : manifest.shards) {
    rows += testing::ReadText(index + "/" + shard.file.file);
  }
  return rows;
}

template <typename Matrix>
double MaxRelativeDifference(const Matrix& a, const Matrix& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return 1e300;
  const double scale = std::max(a.cwiseAbs().maxCoeff(), 1e-300);
  return (a - b).cwiseAbs().maxCoeff() / scale;
}

class DistributedBuildTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::TinyModelSpec spec;
    spec.train_size = kTrainSize;
    spec.epochs = 1;
    TrainRecipe recipe;
    std::unique_ptr<Model> model = testing::TrainTinyModel(spec, &recipe);
    ASSERT_TRUE(model->Save(ModelDir(), recipe).ok());
    absl::StatusOr<testing::CommandResult> single =
        RunCommand(BuildCommand(ModelDir(), Single(), 0, ""), 120);
    ASSERT_TRUE(single.ok()) << single.status();
    ASSERT_EQ(single->exit_code, 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string ModelDir() { return dir_->file("model"); }
  static std::string Single() { return dir_->file("single"); }
  static std::string Logs() { return dir_->file("torchrun-logs"); }

  // `index` (built by several ranks) equals the single-process build.
  static void ExpectEqualsSingle(const std::string& index, size_t min_shards) {
    const Manifest one = ReadManifest(Single());
    const Manifest many = ReadManifest(index);
    EXPECT_EQ(many.rows, kTrainSize);
    EXPECT_GE(many.shards.size(), min_shards) << "every rank writes its own shards";
    EXPECT_TRUE(RowBytes(index, many) == RowBytes(Single(), one)) << "rows differ";
    EXPECT_TRUE(testing::ReadText(index + "/samples.tsv") ==
                testing::ReadText(Single() + "/samples.tsv"));
    absl::StatusOr<KroneckerFactors> a = LoadFactors(Single() + "/factors.safetensors");
    absl::StatusOr<KroneckerFactors> b = LoadFactors(index + "/factors.safetensors");
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->layers.size(), b->layers.size());
    for (size_t l = 0; l < a->layers.size(); ++l) {
      const LayerFactors& x = a->layers[l];
      const LayerFactors& y = b->layers[l];
      EXPECT_LT(MaxRelativeDifference(x.a_cov, y.a_cov), 1e-10) << "layer " << l;
      EXPECT_LT(MaxRelativeDifference(x.s_cov, y.s_cov), 1e-10) << "layer " << l;
      EXPECT_LT(MaxRelativeDifference(x.lambda_a, y.lambda_a), 1e-10) << "layer " << l;
      EXPECT_LT(MaxRelativeDifference(x.lambda_s, y.lambda_s), 1e-10) << "layer " << l;
      EXPECT_LT(MaxRelativeDifference(x.corrected, y.corrected), 1e-10) << "layer " << l;
    }
    // The same manifest apart from the shard files and the factors' checksum.
    Manifest normalized = many;
    normalized.shards = one.shards;
    normalized.factors = one.factors;
    EXPECT_EQ(ManifestToJson(normalized), ManifestToJson(one));
    absl::StatusOr<testing::CommandResult> verify =
        RunCommand({TDA_CLI_BINARY, "index", "verify", "--index", index}, 60);
    ASSERT_TRUE(verify.ok());
    EXPECT_EQ(verify->exit_code, 0) << verify->stdout_text;
    // Nothing of the ranks' parts is left beside the index.
    for (const auto& entry : std::filesystem::directory_iterator(index)) {
      EXPECT_EQ(entry.path().filename().string().find("part"), std::string::npos) << entry.path();
    }
  }

  static testing::TempDir* dir_;
};
testing::TempDir* DistributedBuildTest::dir_ = nullptr;

TEST_F(DistributedBuildTest, ThreeRanksEqualOneProcess) {
  const std::string out = dir_->file("three");
  absl::StatusOr<testing::CommandResult> run =
      RunCommand(BuildCommand(ModelDir(), out, 3, Logs()), 300);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->stdout_text;
  ExpectEqualsSingle(out, 3);
}

// The pid of the process whose environment holds `tag` and RANK=`rank`, or -1.
pid_t FindRank(const std::string& tag, int rank) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream file(entry.path().string() + "/environ", std::ios::binary);
    const std::string environment((std::istreambuf_iterator<char>(file)),
                                  std::istreambuf_iterator<char>());  // "" when not ours
    const std::vector<std::string> variables = absl::StrSplit(environment, '\0');
    bool tagged = false, ranked = false;
    for (const std::string& v : variables) {
      tagged |= v == "TDA_TEST_TAG=" + tag;
      ranked |= v == absl::StrCat("RANK=", rank);
    }
    if (tagged && ranked) return static_cast<pid_t>(std::stoi(name));
  }
  return -1;
}

TEST_F(DistributedBuildTest, AKilledRankLeavesNoIndexAndARerunCompletes) {
  const std::string out = dir_->file("killed");
  const std::string tag = absl::StrCat("kill-", getpid());
  absl::StatusOr<std::unique_ptr<ChildProcess>> torchrun =
      ChildProcess::Start(BuildCommand(ModelDir(), out, 2, Logs(), tag));
  ASSERT_TRUE(torchrun.ok()) << torchrun.status();
  // Rank 0 writes the model copy first, before the ranks meet: the build has begun.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  pid_t rank1 = -1;
  while (std::chrono::steady_clock::now() < give_up &&
         (rank1 < 0 || !std::filesystem::exists(out + "/model/config.json"))) {
    if (rank1 < 0) rank1 = FindRank(tag, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(rank1, 0) << "rank 1 never started";
  ASSERT_FALSE(std::filesystem::exists(out + "/manifest.json")) << "finished before the kill";
  ASSERT_EQ(kill(rank1, SIGKILL), 0);
  absl::StatusOr<int> exit_code = (*torchrun)->Wait(120);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_NE(*exit_code, 0) << "torchrun reports the failed rank";
  EXPECT_FALSE(std::filesystem::exists(out + "/manifest.json")) << "no index after a failure";
  absl::StatusOr<testing::CommandResult> verify =
      RunCommand({TDA_CLI_BINARY, "index", "verify", "--index", out}, 60);
  ASSERT_TRUE(verify.ok());
  EXPECT_NE(verify->exit_code, 0);

  absl::StatusOr<testing::CommandResult> rerun =
      RunCommand(BuildCommand(ModelDir(), out, 2, Logs()), 300);
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  ASSERT_EQ(rerun->exit_code, 0) << rerun->stdout_text;
  ExpectEqualsSingle(out, 2);
}

}  // namespace
}  // namespace tda
