// Background jobs end to end: the real tda-server with a job database (a real SQLite file),
// real tda-job-worker processes, the tda CLI. Proves that a job survives kill -9 of the
// server (its worker dies with it; after a restart the job is rerun and its result is
// complete; nothing queued is lost; the database passes PRAGMA integrity_check), that cancel
// stops a running job within seconds and removes its partial output, that a schedule fires at
// its cron times and never overlaps its runs, that a batch-attribute job writes exactly what
// the offline Attributor computes, and that an evaluate-lds job writes its result.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attribution/attributor.h"
#include "jobs/job_store.h"
#include "jobs_fixture.h"

namespace tda {
namespace {

using ::testing::HasSubstr;

TEST_F(JobsTest, AJobSurvivesKill9OfTheServer) {
  StartServer(/*slots=*/2);
  const std::string out = dir_->file("rebuilt-index");
  const v1::Job build = Submit("build-index", LongBuildSpec(out));
  // Not restartable: after the crash it must be reported interrupted.
  const v1::Job lds = Submit("evaluate-lds", {{"out", dir_->file("lds.json")}, {"epochs", 20}});
  const v1::Job queued = Submit("sleep", {{"seconds", 0.2}});  // waits for a free slot
  const v1::Job running = WaitFor(
      build.id(), [](const v1::Job& j) { return j.progress() > 0.05; }, 60);
  ASSERT_EQ(running.state(), v1::JOB_STATE_RUNNING);
  const v1::Job lds_running = WaitFor(
      lds.id(), [](const v1::Job& j) { return j.progress() > 0; }, 30);
  ASSERT_EQ(lds_running.state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(WorkerPids(db_).size(), 2u);

  server_->Signal(SIGKILL);
  absl::StatusOr<int> exit = server_->Wait(10);
  TDA_ASSERT_OK(exit);
  EXPECT_EQ(*exit, 128 + SIGKILL);
  // The worker dies with the server (PR_SET_PDEATHSIG).
  const auto start = Clock::now();
  while (!WorkerPids(db_).empty() && SecondsSince(start) < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(WorkerPids(db_).empty());
  {
    // The database as the crash left it: intact, the build still marked running, the queued
    // job still queued.
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(db_);
    TDA_ASSERT_OK(store);
    TDA_ASSERT_OK((*store)->IntegrityCheck());
    EXPECT_EQ((*store)->Get(build.id())->state, JobState::kRunning);
    EXPECT_EQ((*store)->Get(lds.id())->state, JobState::kRunning);
    EXPECT_EQ((*store)->Get(queued.id())->state, JobState::kQueued);
  }
  EXPECT_FALSE(std::filesystem::exists(out));  // only the temporary directory was written

  StartServer();  // recovers: build-index is restartable, so it runs again from scratch
  const v1::Job rebuilt = WaitFor(
      build.id(), [](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; }, 90);
  EXPECT_EQ(rebuilt.state(), v1::JOB_STATE_SUCCEEDED) << rebuilt.error();
  EXPECT_EQ(rebuilt.attempt(), 2);
  EXPECT_EQ(rebuilt.result_path(), out);
  const v1::Job interrupted = Get(lds.id());
  EXPECT_EQ(interrupted.state(), v1::JOB_STATE_INTERRUPTED);
  EXPECT_THAT(interrupted.error(), HasSubstr("evaluate-lds jobs are not restarted automatically"));
  EXPECT_FALSE(std::filesystem::exists(dir_->file("lds.json")));
  const v1::Job slept = WaitFor(
      queued.id(), [](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; }, 30);
  EXPECT_EQ(slept.state(), v1::JOB_STATE_SUCCEEDED);

  // The result is complete: every file verifies against the manifest's checksums.
  absl::StatusOr<std::unique_ptr<GradientIndex>> index =
      GradientIndex::Open(out, GradientIndex::Verify::kFull);
  TDA_ASSERT_OK(index);
  EXPECT_EQ((*index)->rows(), kLongBuildRows);
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(out, ".job", build.id(), "-tmp")));

  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(db_);
  TDA_ASSERT_OK(store);
  TDA_ASSERT_OK((*store)->IntegrityCheck());
  absl::StatusOr<std::vector<JobLogLine>> log = (*store)->LogSince(build.id(), 0, 1000);
  TDA_ASSERT_OK(log);
  bool requeued = false;
  for (const JobLogLine& l : *log) {
    requeued = requeued || l.line.find("requeued to restart from scratch") != std::string::npos;
  }
  EXPECT_TRUE(requeued);
}

TEST_F(JobsTest, CancelStopsARunningJobWithinSeconds) {
  StartServer();
  const std::string out = dir_->file("cancelled-index");
  const v1::Job build = Submit("build-index", LongBuildSpec(out));
  const v1::Job queued = Submit("sleep", {{"seconds", 30}});
  const v1::Job running = WaitFor(
      build.id(), [](const v1::Job& j) { return j.progress() > 0.05; }, 60);
  ASSERT_EQ(running.state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(WorkerPids(db_).size(), 1u);
  const std::string temp = absl::StrCat(out, ".job", build.id(), "-tmp");
  EXPECT_TRUE(std::filesystem::exists(temp));

  // A queued job is cancelled at once, through the CLI.
  const CommandResult cancel_queued =
      Cli({"jobs", "cancel", std::to_string(queued.id()), "--server", address_});
  EXPECT_EQ(cancel_queued.exit_code, 0);
  EXPECT_THAT(cancel_queued.stdout_text, HasSubstr("cancelled"));

  const auto start = Clock::now();
  const CommandResult cancel =
      Cli({"jobs", "cancel", std::to_string(build.id()), "--server", address_, "--json"});
  EXPECT_EQ(cancel.exit_code, 0);
  EXPECT_THAT(cancel.stdout_text, HasSubstr("\"cancel_requested\": true"));
  const v1::Job cancelled = WaitFor(
      build.id(), [](const v1::Job& j) { return j.state() == v1::JOB_STATE_CANCELLED; }, 10);
  const double seconds = SecondsSince(start);
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(seconds, 5.0);
  std::cerr << "cancel took " << seconds << " s (CLI start included)\n";
  // Its resources are gone: the worker process and the partial output.
  const auto gone = Clock::now();
  while (!WorkerPids(db_).empty() && SecondsSince(gone) < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(WorkerPids(db_).empty());
  EXPECT_FALSE(std::filesystem::exists(temp));
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_EQ(Get(queued.id()).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Get(queued.id()).attempt(), 0);  // never started

  // Finished jobs cannot be cancelled again.
  grpc::ClientContext context;
  v1::CancelJobRequest request;
  request.set_id(build.id());
  v1::Job reply;
  EXPECT_EQ(stub_->CancelJob(&context, request, &reply).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(JobsTest, AScheduleFiresOnTimeAndNeverOverlaps) {
  StartServer();
  // Every 2 s (6-field form with seconds), a job that takes 3 s: every other firing finds the
  // previous run still going and is skipped.
  const CommandResult created =
      Cli({"jobs", "schedule", "create", "sleep", "--server", address_, "--name", "every-2s",
           "--cron", "*/2 * * * * *", "--seconds", "3", "--json"});
  ASSERT_EQ(created.exit_code, 0);
  std::this_thread::sleep_for(std::chrono::seconds(11));
  grpc::ClientContext context;
  v1::ListSchedulesResponse schedules;
  ASSERT_TRUE(stub_->ListSchedules(&context, v1::ListSchedulesRequest(), &schedules).ok());
  ASSERT_EQ(schedules.schedules_size(), 1);
  const v1::Schedule& schedule = schedules.schedules(0);
  EXPECT_EQ(schedule.name(), "every-2s");
  std::vector<v1::ScheduleRun> runs(schedule.recent_runs().rbegin(), schedule.recent_runs().rend());
  ASSERT_GE(runs.size(), 4u);
  int submitted = 0, skipped = 0;
  std::vector<v1::Job> jobs;
  for (size_t i = 0; i < runs.size(); ++i) {
    // Fired at the cron times: whole even seconds, consecutive.
    EXPECT_EQ(std::fmod(runs[i].fire_time(), 2.0), 0.0) << runs[i].fire_time();
    if (i > 0) {
      EXPECT_EQ(runs[i].fire_time() - runs[i - 1].fire_time(), 2.0);
    }
    if (runs[i].job_id() > 0) {
      ++submitted;
      const v1::Job job = Get(runs[i].job_id());
      EXPECT_EQ(job.schedule_id(), schedule.id());
      // Submitted on time (within the runner's tick and a loaded machine's slack).
      EXPECT_GE(job.created_at(), runs[i].fire_time());
      EXPECT_LT(job.created_at() - runs[i].fire_time(), 1.0);
      jobs.push_back(job);
    } else {
      ++skipped;
      EXPECT_THAT(runs[i].skipped_reason(), HasSubstr("is still"));
    }
  }
  EXPECT_GE(submitted, 2);
  EXPECT_GE(skipped, 1);
  // No two runs overlap.
  for (size_t i = 1; i < jobs.size(); ++i) {
    ASSERT_GT(jobs[i - 1].finished_at(), 0) << "job " << jobs[i - 1].id() << " not finished";
    if (jobs[i].started_at() > 0) {
      EXPECT_GE(jobs[i].started_at(), jobs[i - 1].finished_at());
    }
  }
  EXPECT_EQ(schedule.next_fire_time() - runs.back().fire_time(), 2.0);

  const CommandResult deleted =
      Cli({"jobs", "schedule", "delete", std::to_string(schedule.id()), "--server", address_});
  EXPECT_EQ(deleted.exit_code, 0);
  const CommandResult listed = Cli({"jobs", "schedule", "list", "--server", address_});
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_THAT(listed.stdout_text, ::testing::Not(HasSubstr("every-2s")));
}

TEST_F(JobsTest, BatchAttributeAndEvaluateLdsWriteTheirResults) {
  StartServer();
  const std::string queries = dir_->file("queries.jsonl");
  {
    std::ofstream q(queries);
    q << R"({"sample_id": "fashion-mnist/test/0"})"
      << "\n"
      << R"({"sample_id": "fashion-mnist/test/1", "label": 3})"
      << "\n\n"
      << R"({"sample_id": "fashion-mnist/train/5"})"
      << "\n";
  }
  const std::string results = dir_->file("results.jsonl");
  const std::string scores = dir_->file("scores.npy");
  const CommandResult run =
      Cli({"jobs", "submit", "batch-attribute", "--server", address_, "--index",
           dir_->file("index"), "--queries", queries, "--out", results, "--scores-out", scores,
           "--top-k", "4", "--batch", "2", "--watch"});
  ASSERT_EQ(run.exit_code, 0) << run.stdout_text;
  EXPECT_THAT(run.stdout_text, HasSubstr("succeeded: " + results));

  absl::StatusOr<std::unique_ptr<Attributor>> offline = Attributor::Open(dir_->file("index"));
  TDA_ASSERT_OK(offline);
  AttributeOptions options;
  options.top_k = 4;
  std::vector<Query> offline_queries(3);
  offline_queries[0].sample_id = "fashion-mnist/test/0";
  offline_queries[1].sample_id = "fashion-mnist/test/1";
  offline_queries[1].label = 3;
  offline_queries[2].sample_id = "fashion-mnist/train/5";
  absl::StatusOr<std::vector<QueryResult>> expected =
      (*offline)->Attribute(offline_queries, options);
  TDA_ASSERT_OK(expected);
  std::ifstream in(results);
  std::string line;
  size_t n = 0;
  for (; std::getline(in, line); ++n) {
    ASSERT_LT(n, expected->size());
    const nlohmann::json r = nlohmann::json::parse(line);
    const QueryResult& e = (*expected)[n];
    EXPECT_EQ(r["query_id"], e.query_id);
    EXPECT_EQ(r["label"], e.label);
    ASSERT_EQ(r["proponents"].size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(r["proponents"][k]["sample_id"], e.proponents[k].id);
      EXPECT_NEAR(r["proponents"][k]["score"].get<double>(), e.proponents[k].score,
                  1e-6 * std::abs(e.proponents[0].score));
      EXPECT_EQ(r["opponents"][k]["sample_id"], e.opponents[k].id);
    }
  }
  EXPECT_EQ(n, 3u);
  // (3, 1000) float32: the .npy header then the scores.
  EXPECT_EQ(std::filesystem::file_size(scores), 128u + 3 * kTrainSize * sizeof(float));

  // evaluate-lds (tiny settings: this checks the job, not the score) writes its JSON result.
  const std::string lds = dir_->file("lds.json");
  const CommandResult lds_run =
      Cli({"jobs", "submit", "evaluate-lds", "--server", address_, "--out", lds, "--train-size",
           "200", "--queries", "4", "--subsets", "6", "--epochs", "3", "--methods",
           "ekfac,gradient-dot", "--watch"});
  ASSERT_EQ(lds_run.exit_code, 0) << lds_run.stdout_text;
  std::ifstream lds_in(lds);
  const nlohmann::json lds_result = nlohmann::json::parse(lds_in);
  ASSERT_EQ(lds_result["methods"].size(), 2u);
  EXPECT_EQ(lds_result["methods"][0]["method"], "ekfac");
  for (const nlohmann::json& m : lds_result["methods"]) {
    EXPECT_GE(m["lds"].get<double>(), -1.0);
    EXPECT_LE(m["lds"].get<double>(), 1.0);
  }

  // A malformed spec is refused before anything is queued.
  const CommandResult bad =
      Cli({"jobs", "submit", "batch-attribute", "--server", address_, "--index", "x"});
  EXPECT_EQ(bad.exit_code, 2);
  const CommandResult help = Cli({"jobs", "submit", "build-index", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.stdout_text, HasSubstr("--model-dir"));
  EXPECT_THAT(help.stdout_text, HasSubstr("--projection-dim"));
}

// 'tda ablate' submits an ablation job and follows it: removing the top proponents of a test
// image, measured on its class and another, with the unlearned model saved and loadable; and
// 'tda ablate matrix' writes the source x task map as JSON, CSV and SVG.
TEST_F(JobsTest, AblateRemovesTopProponentsAndWritesTheUnlearnedModel) {
  StartServer();
  const std::string out = dir_->file("ablation.json");
  const std::string unlearned = dir_->file("unlearned");
  const CommandResult run =
      Cli({"ablate", "--server", address_, "--index", dir_->file("index"), "--tasks",
           "class:Ankle boot:20;class:Trouser:20", "--remove-top-k", "30", "--top-k-of",
           "fashion-mnist/test/0", "--out", out, "--unlearned-out", unlearned});
  ASSERT_EQ(run.exit_code, 0) << run.stdout_text;
  std::ifstream in(out);
  const nlohmann::json result = nlohmann::json::parse(in);
  EXPECT_EQ(result["removed"], 30);
  ASSERT_EQ(result["tasks"].size(), 2u);
  EXPECT_EQ(result["tasks"][0]["task"], "class:Ankle boot:20");
  ASSERT_EQ(result["tasks"][0]["queries"].size(), 20u);
  for (const nlohmann::json& task : result["tasks"]) {
    for (const char* field : {"mean_predicted", "mean_newton", "mean_retrained"}) {
      EXPECT_TRUE(task[field].is_number()) << field;
    }
  }
  // fashion-mnist/test/0 is an ankle boot: its top proponents are ankle boots, so the
  // prediction puts the larger loss increase on that class.
  EXPECT_GT(result["tasks"][0]["mean_predicted"].get<double>(),
            result["tasks"][1]["mean_predicted"].get<double>());
  EXPECT_TRUE(result["pearson_predicted_retrained"].is_number());
  TDA_ASSERT_OK(LoadModel(unlearned));

  const CommandResult bad = Cli({"ablate", "--server", address_, "--index", dir_->file("index"),
                                 "--tasks", "source:zippy", "--out", dir_->file("bad.json"),
                                 "--remove-ids",
                                 "fashion-mnist/train/1"});
  EXPECT_EQ(bad.exit_code, 1) << "a language-model task on an image model fails the job";

  const std::string csv = dir_->file("matrix.csv"), svg = dir_->file("matrix.svg");
  const CommandResult matrix =
      Cli({"ablate", "matrix", "--server", address_, "--index", dir_->file("index"), "--tasks",
           "class:0:10;class:1:10;class:9:10", "--out", dir_->file("matrix.json"), "--csv", csv,
           "--svg", svg});
  ASSERT_EQ(matrix.exit_code, 0) << matrix.stdout_text;
  std::ifstream csv_in(csv);
  std::string header;
  std::getline(csv_in, header);
  EXPECT_EQ(header, "source,samples,class:0:10,class:1:10,class:9:10");
  EXPECT_TRUE(std::filesystem::file_size(svg) > 500);
}

}  // namespace
}  // namespace tda
