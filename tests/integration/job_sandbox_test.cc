// Job paths confined to the server's roots and jobs that never destroy what they did not
// create, end to end through the real tda-server, its job database and worker processes:
// paths outside the roots (absolute, `..`, a symlink leading out) and outputs in the state
// directory are refused with PERMISSION_DENIED naming the path, and the job database survives;
// an existing file or directory that is not a tda output is never replaced, with or without
// overwrite, and its bytes are untouched, also when it appears after the submission (the
// worker checks again); a job's own earlier output (an earlier run of its schedule) is
// replaced, and another job's (a results file, an index) only with overwrite: true;
// out-of-range numbers are refused.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "common/atomic_file.h"
#include "jobs/job_store.h"
#include "jobs_fixture.h"

namespace tda {
namespace {

using ::testing::HasSubstr;

#define TDA_EXPECT_OK_STATUS(expr)                 \
  do {                                             \
    const absl::Status tda_s_ = (expr);            \
    EXPECT_TRUE(tda_s_.ok()) << tda_s_.ToString(); \
  } while (0)

bool IsFinished(const v1::Job& j) {
  return j.state() == v1::JOB_STATE_SUCCEEDED || j.state() == v1::JOB_STATE_FAILED ||
         j.state() == v1::JOB_STATE_CANCELLED || j.state() == v1::JOB_STATE_INTERRUPTED;
}

class JobSandboxTest : public JobsTest {
 protected:
  void SetUp() override {
    JobsTest::SetUp();
    testing::WriteText(dir_->file("queries.jsonl"), "{\"sample_id\": \"fashion-mnist/test/0\"}\n");
  }

  nlohmann::json AttributeSpec(const std::string& out) const {
    return {{"index", dir_->file("index")}, {"queries", "queries.jsonl"}, {"out", out}};
  }

  nlohmann::json BuildSpec(const std::string& out_dir) const {
    return {{"model_dir", dir_->file("model")},
            {"out_dir", out_dir},
            {"train_size", 100},
            {"projection_dim", 4}};
  }

  // The status of a submission that must be refused, after checking its code and that the
  // message names `path`.
  void ExpectRefused(const std::string& kind, const nlohmann::json& spec, grpc::StatusCode code,
                     const std::string& path) {
    v1::Job job;
    const grpc::Status status = TrySubmit(kind, spec, &job);
    EXPECT_EQ(status.error_code(), code) << spec.dump() << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(path)) << spec.dump();
  }

  v1::Job RunToEnd(const std::string& kind, const nlohmann::json& spec) {
    const v1::Job job = Submit(kind, spec);
    return WaitFor(job.id(), IsFinished, 120);
  }
};

TEST_F(JobSandboxTest, PathsOutsideTheRootsAndTheStateDirAreRefused) {
  StartServer();
  constexpr auto kDenied = grpc::StatusCode::PERMISSION_DENIED;
  ExpectRefused("batch-attribute", AttributeSpec("/etc/tda-results.jsonl"), kDenied,
                "/etc/tda-results.jsonl");
  ExpectRefused("batch-attribute", AttributeSpec("../../../../../../tmp/x.jsonl"), kDenied,
                "../../../../../../tmp/x.jsonl");
  nlohmann::json input_out = AttributeSpec("r.jsonl");
  input_out["queries"] = "/etc/passwd";
  ExpectRefused("batch-attribute", input_out, kDenied, "/etc/passwd");
  // A symlink inside the root that leads out of it: nothing is written where it points.
  testing::TempDir outside;
  std::filesystem::create_directory_symlink(outside.path(), dir_->file("escape"));
  ExpectRefused("batch-attribute", AttributeSpec("escape/r.jsonl"), kDenied, "escape/r.jsonl");
  ExpectRefused("build-index", BuildSpec("escape/idx"), kDenied, "escape/idx");
  EXPECT_TRUE(std::filesystem::is_empty(outside.path()));
  // Schedules are checked when created, the same way.
  {
    grpc::ClientContext context;
    v1::CreateScheduleRequest request;
    request.set_name("nightly");
    request.set_cron("0 2 * * *");
    request.set_kind("batch-attribute");
    request.set_spec_json(AttributeSpec("/etc/nightly.jsonl").dump());
    v1::Schedule schedule;
    const grpc::Status status = stub_->CreateSchedule(&context, request, &schedule);
    EXPECT_EQ(status.error_code(), kDenied);
    EXPECT_THAT(status.error_message(), HasSubstr("/etc/nightly.jsonl"));
  }

  // The state directory (the job database's) is never an output, not even though the output
  // root contains it; the database survives the attempts.
  const v1::Job before = RunToEnd("sleep", {{"seconds", 0.1}});
  EXPECT_EQ(before.state(), v1::JOB_STATE_SUCCEEDED);
  const std::string db_bytes_before = testing::ReadText(db_).substr(0, 16);
  for (const std::string& out : {state_dir_, state_dir_ + "/index", db_}) {
    ExpectRefused("build-index", BuildSpec(out), kDenied, "--state-dir");
  }
  ExpectRefused("batch-attribute", AttributeSpec(db_), kDenied, db_);
  EXPECT_EQ(testing::ReadText(db_).substr(0, 16), db_bytes_before);  // "SQLite format 3"
  EXPECT_EQ(Get(before.id()).state(), v1::JOB_STATE_SUCCEEDED);
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(db_);
  TDA_ASSERT_OK(store);
  TDA_ASSERT_OK((*store)->IntegrityCheck());

  // Durations and sizes out of their range, named with the range.
  for (double seconds : {-5.0, 1e9}) {
    v1::Job job;
    const grpc::Status status = TrySubmit("sleep", {{"seconds", seconds}}, &job);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << seconds;
    EXPECT_THAT(status.error_message(), HasSubstr("'seconds'"));
    EXPECT_THAT(status.error_message(), HasSubstr("(0, 604800]"));
  }
  nlohmann::json top_k = AttributeSpec("r.jsonl");
  top_k["top_k"] = -3;
  ExpectRefused("batch-attribute", top_k, grpc::StatusCode::INVALID_ARGUMENT, "'top_k'");
  // The CLI shows the ranges.
  const CommandResult help = Cli({"jobs", "submit", "sleep", "--help"});
  EXPECT_THAT(help.stdout_text, HasSubstr("(0, 604800]"));
}

TEST_F(JobSandboxTest, ExistingOutputsThatAreNotTheJobsOwnAreNeverDestroyed) {
  StartServer();
  constexpr auto kNever = grpc::StatusCode::FAILED_PRECONDITION;
  // A directory that is not an index, as a build's out_dir: refused with and without
  // overwrite, its contents untouched.
  const std::string precious = dir_->file("precious");
  std::filesystem::create_directories(precious);
  testing::WriteText(precious + "/thesis.tex", "\\documentclass{article} years of work");
  ExpectRefused("build-index", BuildSpec(precious), kNever, precious);
  nlohmann::json overwrite = BuildSpec(precious);
  overwrite["overwrite"] = true;
  ExpectRefused("build-index", overwrite, kNever, precious);

  // A foreign file as batch-attribute's out: the same.
  const std::string foreign = dir_->file("foreign.jsonl");
  testing::WriteText(foreign, "my own notes\n");
  ExpectRefused("batch-attribute", AttributeSpec(foreign), kNever, foreign);
  nlohmann::json overwrite_foreign = AttributeSpec(foreign);
  overwrite_foreign["overwrite"] = true;
  ExpectRefused("batch-attribute", overwrite_foreign, kNever, foreign);

  // A directory that appears after the submission, while the job waits: the worker checks
  // again and fails the job without touching it.
  const v1::Job blocker = Submit("sleep", {{"seconds", 1.5}});
  const std::string later = dir_->file("later");
  const v1::Job build = Submit("build-index", BuildSpec(later));
  std::filesystem::create_directories(later);
  testing::WriteText(later + "/keep.txt", "keep");
  const v1::Job failed = WaitFor(build.id(), IsFinished, 120);
  EXPECT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed.error(), HasSubstr(later));
  EXPECT_EQ(testing::ReadText(later + "/keep.txt"), "keep");
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(later, ".job", build.id(), "-tmp")));
  EXPECT_EQ(WaitFor(blocker.id(), IsFinished, 30).state(), v1::JOB_STATE_SUCCEEDED);

  EXPECT_EQ(testing::ReadText(precious + "/thesis.tex"), "\\documentclass{article} years of work");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(precious),
                          std::filesystem::directory_iterator()),
            1);
  EXPECT_EQ(testing::ReadText(foreign), "my own notes\n");
}

TEST_F(JobSandboxTest, AJobReplacesItsOwnOutputAndAnotherJobsOnlyWithOverwrite) {
  StartServer();
  // A relative output path: under --output-root.
  const v1::Job first = RunToEnd("batch-attribute", AttributeSpec("results.jsonl"));
  ASSERT_EQ(first.state(), v1::JOB_STATE_SUCCEEDED) << first.error();
  const std::string results = dir_->file("results.jsonl");
  EXPECT_EQ(first.result_path(), std::filesystem::canonical(results).string());
  const std::string written = testing::ReadText(results);
  EXPECT_THAT(written, HasSubstr("\"query_id\""));

  // Another job may replace it only with overwrite: true.
  ExpectRefused("batch-attribute", AttributeSpec("results.jsonl"), grpc::StatusCode::ALREADY_EXISTS,
                "overwrite");
  nlohmann::json again = AttributeSpec("results.jsonl");
  again["overwrite"] = true;
  again["top_k"] = 3;
  const v1::Job second = RunToEnd("batch-attribute", again);
  ASSERT_EQ(second.state(), v1::JOB_STATE_SUCCEEDED) << second.error();
  EXPECT_NE(testing::ReadText(results), written);  // top_k 3 instead of 10
  // Edited since the job wrote it: nobody's output any more, not even with overwrite.
  testing::WriteText(results, testing::ReadText(results) + "\n");
  ExpectRefused("batch-attribute", again, grpc::StatusCode::FAILED_PRECONDITION, results);

  // An index: rebuilt by another job only with overwrite: true, and then a valid index again.
  const v1::Job built = RunToEnd("build-index", BuildSpec("built-index"));
  ASSERT_EQ(built.state(), v1::JOB_STATE_SUCCEEDED) << built.error();
  ExpectRefused("build-index", BuildSpec("built-index"), grpc::StatusCode::ALREADY_EXISTS,
                "built-index");
  nlohmann::json rebuild = BuildSpec("built-index");
  rebuild["overwrite"] = true;
  rebuild["seed"] = 1;
  const v1::Job rebuilt = RunToEnd("build-index", rebuild);
  ASSERT_EQ(rebuilt.state(), v1::JOB_STATE_SUCCEEDED) << rebuilt.error();
  TDA_EXPECT_OK_STATUS(Attributor::Open(dir_->file("built-index")).status());
  EXPECT_FALSE(std::filesystem::exists(
      absl::StrCat(dir_->file("built-index"), ".job", rebuilt.id(), "-old")));

  // A schedule's runs each replace the previous run's output without overwrite.
  {
    grpc::ClientContext context;
    v1::CreateScheduleRequest request;
    request.set_name("every-2s");
    request.set_cron("*/2 * * * * *");
    request.set_kind("batch-attribute");
    request.set_spec_json(AttributeSpec("scheduled.jsonl").dump());
    v1::Schedule schedule;
    ASSERT_TRUE(stub_->CreateSchedule(&context, request, &schedule).ok());
  }
  std::vector<v1::Job> runs;
  const auto start = Clock::now();
  while (runs.size() < 2 && SecondsSince(start) < 60) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    grpc::ClientContext context;
    v1::ListJobsRequest request;
    v1::ListJobsResponse response;
    ASSERT_TRUE(stub_->ListJobs(&context, request, &response).ok());
    runs.clear();
    for (const v1::Job& j : response.jobs()) {
      if (j.schedule_id() != 0 && IsFinished(j)) runs.push_back(j);
    }
  }
  ASSERT_GE(runs.size(), 2u);
  for (const v1::Job& j : runs) EXPECT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED) << j.error();
  EXPECT_THAT(testing::ReadText(dir_->file("scheduled.jsonl")), HasSubstr("\"query_id\""));
}

}  // namespace
}  // namespace tda
