// tda jobs schedule create | list | delete: cron schedules of job kinds on a tda-server.
#include <iostream>

#include "absl/strings/str_format.h"
#include "client/jobs_client.h"
#include "client/result_format.h"

namespace tda {

int RunJobsSchedule(Args args) {
  constexpr char kUsage[] =
      "Usage: tda jobs schedule create --server ADDR --name N --cron EXPR KIND [--FIELD VALUE]\n"
      "       tda jobs schedule list --server ADDR [--json]\n"
      "       tda jobs schedule delete ID --server ADDR\n"
      "\n"
      "Cron: 5 fields MIN HOUR DOM MON DOW in UTC (e.g. '0 2 * * *' = 02:00 every night;\n"
      "ranges 1-5, steps */15, lists 1,15, names jan..dec / sun..sat, @daily, @hourly, ...),\n"
      "or 6 fields with a leading SECONDS field. A run is skipped (and recorded as skipped)\n"
      "while the schedule's previous job is still queued or running.\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "create") {
    std::string kind_name;
    const bool has_kind = TakePositional(args, &kind_name);
    absl::StatusOr<const JobKind*> kind =
        has_kind ? FindJobKind(kind_name) : absl::StatusOr<const JobKind*>(nullptr);
    FlagParser flags("tda jobs schedule create",
                     "--server ADDR --name N --cron EXPR KIND [--FIELD VALUE ...]",
                     "Runs a job kind on a cron schedule.\n\n" +
                         std::string(kUsage).substr(std::string(kUsage).find("Cron:")));
    AddServerFlags(flags);
    flags.AddRequiredString("name", "N", "a unique name for the schedule");
    flags.AddRequiredString("cron", "EXPR", "when to run (see above)");
    if (has_kind && kind.ok()) AddSpecFlags(flags, **kind);
    if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
    if (!has_kind) return flags.UsageError("give the job kind");
    if (!kind.ok()) return flags.UsageError(std::string(kind.status().message()));
    absl::StatusOr<std::string> spec = SpecFromFlags(flags, **kind);
    if (!spec.ok()) return flags.UsageError(std::string(spec.status().message()));
    absl::StatusOr<std::unique_ptr<JobsClient>> client = JobsClient::Connect(flags);
    if (!client.ok()) return ConnectError(flags, client.status());
    v1::CreateScheduleRequest request;
    request.set_name(flags.GetString("name"));
    request.set_cron(flags.GetString("cron"));
    request.set_kind(kind_name);
    request.set_spec_json(*spec);
    v1::Schedule schedule;
    if (absl::Status s = (*client)->Call("CreateSchedule", &v1::JobService::Stub::CreateSchedule,
                                         request, &schedule);
        !s.ok()) {
      return RuntimeError(s);
    }
    if (flags.GetBool("json")) {
      std::cout << MessageToJson(schedule);
    } else {
      std::cout << "schedule " << schedule.id() << " (" << schedule.name()
                << ") created: " << schedule.kind() << " at '" << schedule.cron() << "'\n";
    }
    return 0;
  }
  if (command == "list" || command == "delete") {
    std::string id_text;
    const bool has_id = command == "delete" && TakePositional(args, &id_text);
    FlagParser flags("tda jobs schedule " + command,
                     command == "list" ? "--server ADDR [--json]" : "ID --server ADDR",
                     command == "list" ? "Lists schedules with their next time and recent runs."
                                       : "Deletes a schedule (its jobs and history stay).");
    AddServerFlags(flags);
    if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
    if (command == "delete" && !has_id) return flags.UsageError("give the schedule id");
    absl::StatusOr<std::unique_ptr<JobsClient>> client = JobsClient::Connect(flags);
    if (!client.ok()) return ConnectError(flags, client.status());
    if (command == "delete") {
      absl::StatusOr<int64_t> id = ParseId(id_text);
      if (!id.ok()) return flags.UsageError(std::string(id.status().message()));
      v1::DeleteScheduleRequest request;
      request.set_id(*id);
      v1::DeleteScheduleResponse response;
      if (absl::Status s = (*client)->Call("DeleteSchedule", &v1::JobService::Stub::DeleteSchedule,
                                           request, &response);
          !s.ok()) {
        return RuntimeError(s);
      }
      std::cout << "schedule " << *id << " deleted\n";
      return 0;
    }
    v1::ListSchedulesResponse response;
    if (absl::Status s = (*client)->Call("ListSchedules", &v1::JobService::Stub::ListSchedules,
                                         v1::ListSchedulesRequest(), &response);
        !s.ok()) {
      return RuntimeError(s);
    }
    if (flags.GetBool("json")) {
      std::cout << MessageToJson(response);
      return 0;
    }
    std::cout << absl::StrFormat("%4s  %-16s  %-18s  %-16s  %-19s  %s\n", "id", "name", "cron",
                                 "kind", "next (UTC)", "last run");
    for (const v1::Schedule& s : response.schedules()) {
      std::string last = "-";
      if (s.recent_runs_size() > 0) {
        const v1::ScheduleRun& r = s.recent_runs(0);
        last = absl::StrCat(FormatTime(r.fire_time()), ": ",
                            r.job_id() > 0 ? absl::StrCat("job ", r.job_id())
                                           : "skipped (" + r.skipped_reason() + ")");
      }
      std::cout << absl::StrFormat("%4d  %-16s  %-18s  %-16s  %-19s  %s\n", s.id(), s.name(),
                                   s.cron(), s.kind(), FormatTime(s.next_fire_time()), last);
    }
    return 0;
  }
  std::cerr << "tda: error: unknown schedule command '" << command << "'\n\n" << kUsage;
  return 2;
}

}  // namespace tda
