// tda jobs: background jobs and schedules on a tda-server (tda.v1.JobService).
//
//   tda jobs submit KIND --server ADDR [--FIELD VALUE ...] [--watch]
//   tda jobs list | get ID | watch ID | cancel ID
//   tda jobs schedule create --name N --cron EXPR KIND [--FIELD VALUE ...] | list | delete ID
//
// The flags of each kind are generated from its spec declaration (src/jobs/job_kinds.h), and
// the spec is checked here with the server's own validation (types, ranges) before it is
// sent. Path fields are sent as given: the server resolves a relative path against its
// --data-root (inputs) or --output-root (outputs) and refuses, with PERMISSION_DENIED, any
// path outside those roots (src/jobs/job_paths.h). The client does not make them absolute,
// since its working directory means nothing on the server.
#include <grpcpp/grpcpp.h>

#include <ctime>
#include <iostream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "client/channel.h"
#include "client/commands.h"
#include "client/jobs_client.h"
#include "common/flags.h"
#include "client/progress_bar.h"
#include "client/result_format.h"
#include "jobs/job_kinds.h"
#include "api/status_conversion.h"
#include "tda/v1/jobs.grpc.pb.h"

namespace tda {
namespace {

constexpr char kJobsUsage[] =
    "Usage: tda jobs <command> [flags]\n"
    "\n"
    "Background jobs on a tda-server started with --state-dir:\n"
    "  submit KIND         queue a job (build-index, batch-attribute, evaluate-lds, sleep)\n"
    "  list                jobs, newest first\n"
    "  get ID              one job, with --log its log\n"
    "  watch ID            follow a job's progress until it finishes\n"
    "  cancel ID           cancel a queued or running job\n"
    "  schedule create     run a job kind on a cron schedule (skipped while the previous run\n"
    "                      is still going)\n"
    "  schedule list       schedules with their next time and recent runs\n"
    "  schedule delete ID  remove a schedule\n"
    "\n"
    "Run 'tda jobs <command> --help' for the flags ('tda jobs submit KIND --help' for a kind's).\n";

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  return absl::AsciiStrToLower(name.substr(std::string("JOB_STATE_").size()));
}

void PrintJobTable(const std::vector<v1::Job>& jobs) {
  std::cout << absl::StrFormat("%6s  %-16s  %-14s  %-11s  %6s  %-18s  %8s  %-19s  %s\n", "id",
                               "kind", "submitter", "state", "done", "stage", "eta",
                               "created (UTC)", "result / error");
  for (const v1::Job& j : jobs) {
    const std::string eta = j.state() == v1::JOB_STATE_RUNNING && j.eta_seconds() >= 0
                                ? FormatDuration(j.eta_seconds())
                                : "-";
    std::cout << absl::StrFormat("%6d  %-16s  %-14s  %-11s  %5.1f%%  %-18s  %8s  %-19s  %s\n",
                                 j.id(), j.kind(), j.submitter().empty() ? "-" : j.submitter(),
                                 StateName(j.state()), 100 * j.progress(), j.stage(), eta,
                                 FormatTime(j.created_at()),
                                 j.error().empty() ? j.result_path() : j.error());
  }
}

void PrintJob(const v1::Job& j) {
  std::cout << absl::StrFormat(
      "job %d (%s): %s\n  progress:  %.1f%% %s%s\n  attempt:   %d%s\n  created:   %s UTC\n"
      "  started:   %s UTC\n  finished:  %s UTC\n  spec:      %s\n",
      j.id(), j.kind(), StateName(j.state()), 100 * j.progress(), j.stage(),
      j.eta_seconds() >= 0 && j.state() == v1::JOB_STATE_RUNNING
          ? " (ETA " + FormatDuration(j.eta_seconds()) + ")"
          : "",
      j.attempt(), j.cancel_requested() ? "  (cancel requested)" : "", FormatTime(j.created_at()),
      FormatTime(j.started_at()), FormatTime(j.finished_at()), j.spec_json());
  if (!j.submitter().empty()) std::cout << "  submitter: " << j.submitter() << "\n";
  if (j.schedule_id() != 0) std::cout << "  schedule:  " << j.schedule_id() << "\n";
  if (!j.result_path().empty()) std::cout << "  result:    " << j.result_path() << "\n";
  if (!j.error().empty()) std::cout << "  error:     " << j.error() << "\n";
}

int ExitCodeOf(const v1::Job& job) { return job.state() == v1::JOB_STATE_SUCCEEDED ? 0 : 1; }

// Streams WatchJob: a progress bar (and the log lines) on stderr, or one JSON update per line
// on stdout. Returns the exit code: 0 when the job succeeded, 1 otherwise.
int Watch(JobsClient& client, int64_t id, bool json) {
  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_id(id);
  std::unique_ptr<grpc::ClientReader<v1::JobUpdate>> reader =
      client.stub().WatchJob(&context, request);
  v1::JobUpdate update;
  v1::Job last;
  {
    ProgressBar bar;
    while (reader->Read(&update)) {
      last = update.job();
      if (json) {
        std::cout << absl::StrReplaceAll(MessageToJson(update), {{"\n", ""}}) << std::endl;
        continue;
      }
      if (update.new_log_lines_size() > 0) {
        bar.Finish();
        for (const v1::LogLine& l : update.new_log_lines()) {
          std::cerr << "  " << FormatTime(l.time()) << "  " << l.line() << "\n";
        }
      }
      if (last.state() == v1::JOB_STATE_RUNNING && !last.stage().empty()) {
        bar.Update(absl::StrCat("job ", id), static_cast<int64_t>(last.progress() * 1000), 1000,
                   last.stage());
      }
    }
  }
  const absl::Status status =
      FromGrpcStatus(reader->Finish(), absl::StrCat("WatchJob at ", client.address()));
  if (!status.ok()) return RuntimeError(status);
  if (!json) {
    std::cout << "job " << id << " " << StateName(last.state())
              << (last.result_path().empty() ? "" : ": " + last.result_path())
              << (last.error().empty() ? "" : ": " + last.error()) << "\n";
  }
  return ExitCodeOf(last);
}

int RunSubmit(Args args) {
  std::string kind_name;
  const bool has_kind = TakePositional(args, &kind_name);
  absl::StatusOr<const JobKind*> kind =
      has_kind ? FindJobKind(kind_name) : absl::StatusOr<const JobKind*>(nullptr);
  FlagParser flags("tda jobs submit", "KIND --server ADDR [--FIELD VALUE ...] [--watch]",
                   has_kind && kind.ok()
                       ? absl::StrCat("Queues one ", kind_name, " job: ", (*kind)->summary, ".")
                       : "Queues a background job on a tda-server.");
  AddServerFlags(flags);
  flags.AddBool("watch", "follow the job's progress until it finishes (exit 1 unless it succeeds)");
  if (has_kind && kind.ok()) AddSpecFlags(flags, **kind);
  std::string kinds;
  for (const JobKind& k : JobKinds()) absl::StrAppend(&kinds, "  ", k.name, ": ", k.summary, "\n");
  flags.AddNote("Kinds ('tda jobs submit KIND --help' for their flags):\n" + kinds +
                "Example:\n  tda jobs submit build-index --server 127.0.0.1:50051 --model-dir "
                "models/fmnist --out-dir idx/fmnist --watch\n"
                "Paths are the server's: a relative path is relative to its --data-root (inputs)\n"
                "or --output-root (outputs), and an absolute one must lie under them. An existing\n"
                "output is replaced only when it is this job's or this schedule's own earlier\n"
                "output, or, with --overwrite, a tda index or a file a tda job wrote; never\n"
                "anything else.");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (!has_kind) return flags.UsageError("give the job kind: tda jobs submit KIND ...");
  if (!kind.ok()) return flags.UsageError(std::string(kind.status().message()));
  absl::StatusOr<std::string> spec = SpecFromFlags(flags, **kind);
  if (!spec.ok()) return flags.UsageError(std::string(spec.status().message()));

  absl::StatusOr<std::unique_ptr<JobsClient>> client = JobsClient::Connect(flags);
  if (!client.ok()) return ConnectError(flags, client.status());
  v1::SubmitJobRequest request;
  request.set_kind(kind_name);
  request.set_spec_json(*spec);
  v1::Job job;
  if (absl::Status s =
          (*client)->Call("SubmitJob", &v1::JobService::Stub::SubmitJob, request, &job);
      !s.ok()) {
    return RuntimeError(s);
  }
  if (flags.GetBool("watch")) {
    if (!flags.GetBool("json")) std::cerr << "job " << job.id() << " submitted\n";
    return Watch(**client, job.id(), flags.GetBool("json"));
  }
  if (flags.GetBool("json")) {
    std::cout << MessageToJson(job);
  } else {
    std::cout << "job " << job.id() << " submitted (" << job.kind() << ")\n";
  }
  return 0;
}

int RunList(const Args& args) {
  FlagParser flags("tda jobs list", "--server ADDR [--state S] [--limit N] [--json]",
                   "Lists jobs, newest first.");
  AddServerFlags(flags);
  flags.AddString("state", "S", "",
                  "only jobs in this state: queued, running, succeeded, failed, cancelled, "
                  "interrupted");
  flags.AddInt("limit", "N", 50, "at most N jobs (1-1000)");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  v1::ListJobsRequest request;
  request.set_limit(flags.GetInt("limit"));
  if (flags.IsSet("state")) {
    v1::JobState state;
    if (!v1::JobState_Parse("JOB_STATE_" + absl::AsciiStrToUpper(flags.GetString("state")),
                            &state) ||
        state == v1::JOB_STATE_UNSPECIFIED) {
      return flags.UsageError("--state: unknown state '" + flags.GetString("state") + "'");
    }
    request.set_state(state);
  }
  absl::StatusOr<std::unique_ptr<JobsClient>> client = JobsClient::Connect(flags);
  if (!client.ok()) return ConnectError(flags, client.status());
  v1::ListJobsResponse response;
  if (absl::Status s =
          (*client)->Call("ListJobs", &v1::JobService::Stub::ListJobs, request, &response);
      !s.ok()) {
    return RuntimeError(s);
  }
  if (flags.GetBool("json")) {
    std::cout << MessageToJson(response);
  } else {
    PrintJobTable({response.jobs().begin(), response.jobs().end()});
  }
  return 0;
}

// get, watch and cancel: one job by id.
int RunOnJob(const std::string& command, Args args) {
  std::string id_text;
  const bool has_id = TakePositional(args, &id_text);
  const std::string summary =
      command == "get"     ? "Shows one job (with --log, its log)."
      : command == "watch" ? "Follows a job's progress (a bar and its log on stderr) until it\n"
                             "finishes. Exit code 0 when it succeeded, 1 otherwise."
                           : "Cancels a queued job at once, or asks a running one to stop (it "
                             "stops within\nseconds and removes its partial output).";
  FlagParser flags("tda jobs " + command, "ID --server ADDR [--json]", summary);
  AddServerFlags(flags);
  if (command == "get") flags.AddBool("log", "also print the job's log");
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (!has_id) return flags.UsageError("give the job id");
  absl::StatusOr<int64_t> id = ParseId(id_text);
  if (!id.ok()) return flags.UsageError(std::string(id.status().message()));
  absl::StatusOr<std::unique_ptr<JobsClient>> client = JobsClient::Connect(flags);
  if (!client.ok()) return ConnectError(flags, client.status());
  if (command == "watch") return Watch(**client, *id, flags.GetBool("json"));
  v1::Job job;
  absl::Status s;
  if (command == "cancel") {
    v1::CancelJobRequest request;
    request.set_id(*id);
    s = (*client)->Call("CancelJob", &v1::JobService::Stub::CancelJob, request, &job);
  } else {
    v1::GetJobRequest request;
    request.set_id(*id);
    s = (*client)->Call("GetJob", &v1::JobService::Stub::GetJob, request, &job);
  }
  if (!s.ok()) return RuntimeError(s);
  if (flags.GetBool("json")) {
    std::cout << MessageToJson(job);
  } else {
    PrintJob(job);
  }
  if (command == "get" && flags.GetBool("log")) {
    // The first WatchJob update carries the whole log.
    grpc::ClientContext context;
    v1::WatchJobRequest request;
    request.set_id(*id);
    std::unique_ptr<grpc::ClientReader<v1::JobUpdate>> reader =
        (*client)->stub().WatchJob(&context, request);
    v1::JobUpdate update;
    if (reader->Read(&update)) {
      for (const v1::LogLine& l : update.new_log_lines()) {
        std::cout << "  " << FormatTime(l.time()) << "  " << l.line() << "\n";
      }
    }
    context.TryCancel();
  }
  return 0;
}

}  // namespace

int RunJobs(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kJobsUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  const Args rest(args.begin() + 1, args.end());
  if (command == "submit") return RunSubmit(rest);
  if (command == "list") return RunList(rest);
  if (command == "get" || command == "watch" || command == "cancel") return RunOnJob(command, rest);
  if (command == "schedule") return RunJobsSchedule(rest);
  std::cerr << "tda: error: unknown jobs command '" << command << "'\n\n" << kJobsUsage;
  return 2;
}

}  // namespace tda
