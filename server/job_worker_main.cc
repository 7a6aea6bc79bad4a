// tda-job-worker: runs one job of a tda job database and exits (started by tda-server's job
// runner, one process per running job; see src/jobs/job_worker.h). Not meant to be run by
// hand, though it is harmless: it refuses a job that is not in state `running`.
#include <iostream>
#include <string>
#include <vector>

#include "common/flags.h"
#include "jobs/job_worker.h"
#include "model/model.h"

int main(int argc, char** argv) {
  tda::FlagParser flags("tda-job-worker", "--db FILE --job ID",
                        "Runs job ID (state running) of the job database FILE, records its\n"
                        "progress, log and outcome there, and exits. Started by tda-server,\n"
                        "which passes its job roots (the worker checks every path again).");
  flags.AddRequiredString("db", "FILE", "job database (the server's <state-dir>/jobs.db)");
  flags.AddInt("job", "ID", 0, "the job to run");
  flags.AddRequiredString("state-dir", "DIR", "the server's state directory (never written)");
  flags.AddRequiredString("data-root", "DIR", "the server's --data-root (inputs)");
  flags.AddRequiredString("output-root", "DIR", "the server's --output-root (outputs)");
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
  if (flags.GetInt("job") <= 0) return flags.UsageError("--job must be > 0");
  tda::InitCompute(0);  // OMP_NUM_THREADS, set by the runner
  // The runner passes canonical roots; MakeJobRoots checks them again.
  absl::StatusOr<tda::JobRoots> roots = tda::MakeJobRoots(
      flags.GetString("state-dir"), flags.GetString("data-root"), flags.GetString("output-root"));
  if (!roots.ok()) {
    std::cerr << "tda-job-worker: " << roots.status().message() << "\n";
    return 1;
  }
  return tda::RunJobWorker(flags.GetString("db"), flags.GetInt("job"), *roots);
}
