// The fixture of the job integration tests (jobs_test.cc, job_sandbox_test.cc): a tiny
// trained model, a wide untrained one and a 1000-row index in a temporary directory; the real
// tda-server started with its job database in a per-test state directory and its job roots
// (--data-root, --output-root) set to that temporary directory; a JobService stub and the CLI.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "child_process.h"
#include "data/fashion_mnist.h"
#include "index/index_builder.h"
#include "model/model.h"
#include "tda/v1/jobs.grpc.pb.h"
#include "test_support.h"

namespace tda {

using ::tda::testing::ChildProcess;
using ::tda::testing::CommandResult;
using ::tda::testing::RunCommand;
using Clock = std::chrono::steady_clock;

inline constexpr int64_t kTrainSize = 1000;
// Rows of the index built by the long build-index jobs: long enough (several seconds on one
// thread) to be caught running.
inline constexpr int64_t kLongBuildRows = 60000;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Pids of the tda-job-worker processes working on the database `db`.
inline std::vector<pid_t> WorkerPids(const std::string& db) {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find("tda-job-worker") != std::string::npos &&
        cmdline.find(db) != std::string::npos) {
      // A zombie is already dead; count only live ones.
      std::ifstream stat(entry.path() / "stat");
      std::string pid, comm, state;
      stat >> pid >> comm >> state;
      if (state != "Z") pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

class JobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    TrainRecipe recipe;
    std::unique_ptr<Model> model = testing::TrainTinyModel({}, &recipe);
    ASSERT_NE(model, nullptr);
    TDA_ASSERT_OK(model->Save(dir_->file("model"), recipe));
    // An untrained 784-512-512-10 MLP: indexing 60,000 images with it takes long enough (tens
    // of seconds) to cancel or kill the build mid-way even on an idle machine.
    ModelConfig wide;
    wide.hidden = {512, 512};
    absl::StatusOr<std::unique_ptr<Model>> wide_model = CreateModel(wide, 0);
    TDA_ASSERT_OK(wide_model);
    TDA_ASSERT_OK((*wide_model)->Save(dir_->file("wide-model"), recipe));
    IndexBuildOptions options;
    options.model_dir = dir_->file("model");
    options.out_dir = dir_->file("index");
    options.projection_dim_per_side = 8;
    TDA_ASSERT_OK(BuildIndex(testing::FashionTrain(kTrainSize), kFashionMnistDefaultDir, options));
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    ASSERT_NE(dir_, nullptr);
    state_dir_ = dir_->file(
        absl::StrCat("state-", ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    db_ = state_dir_ + "/jobs.db";
  }
  void TearDown() override {
    stub_.reset();
    server_.reset();  // SIGKILL if still running
  }

  // Starts tda-server with the job database in state_dir_ and both job roots at dir_ (which
  // holds the state directories too: outputs there are refused), and connects a stub.
  void StartServer(int slots = 1) {
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Start({TDA_SERVER_BINARY, "--index", dir_->file("index"), "--listen",
                             "127.0.0.1:0", "--threads", "1", "--state-dir", state_dir_,
                             "--data-root", dir_->path(), "--output-root", dir_->path(),
                             "--job-slots", std::to_string(slots), "--job-threads", "1"});
    TDA_ASSERT_OK(child);
    server_ = std::move(*child);
    absl::StatusOr<std::string> line = server_->ReadLineContaining("tda-server listening on ", 60);
    TDA_ASSERT_OK(line);
    address_ = line->substr(line->rfind(' ') + 1);
    stub_ =
        v1::JobService::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  // SubmitJob as it answers.
  grpc::Status TrySubmit(const std::string& kind, const nlohmann::json& spec, v1::Job* job) {
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    request.set_kind(kind);
    request.set_spec_json(spec.dump());
    return stub_->SubmitJob(&context, request, job);
  }

  v1::Job Submit(const std::string& kind, const nlohmann::json& spec) {
    v1::Job job;
    const grpc::Status status = TrySubmit(kind, spec, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  v1::Job Get(int64_t id) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_id(id);
    v1::Job job;
    const grpc::Status status = stub_->GetJob(&context, request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  // Polls until `done(job)` or the timeout; returns the last job seen.
  template <typename Pred>
  v1::Job WaitFor(int64_t id, Pred done, double timeout_seconds) {
    const auto start = Clock::now();
    v1::Job job = Get(id);
    while (!done(job) && SecondsSince(start) < timeout_seconds) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      job = Get(id);
    }
    return job;
  }

  nlohmann::json LongBuildSpec(const std::string& out) const {
    return {{"model_dir", dir_->file("wide-model")},
            {"out_dir", out},
            {"train_size", kLongBuildRows},
            {"projection_dim", 8}};
  }

  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), TDA_CLI_BINARY);
    absl::StatusOr<CommandResult> result = RunCommand(args, 120);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{-1, ""};
  }

  static inline testing::TempDir* dir_ = nullptr;
  std::string state_dir_, db_, address_;
  std::unique_ptr<ChildProcess> server_;
  std::unique_ptr<v1::JobService::Stub> stub_;
};

}  // namespace tda
