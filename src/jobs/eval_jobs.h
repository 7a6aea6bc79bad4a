// The `eval` job kind: `tda eval lds | loo` as a background job. Its spec fields mirror the
// CLI's flags (snake_case; -1 or "" = the protocol preset's value); it calls the same
// operation the CLI calls (ops/eval_run.h) on Fashion-MNIST and writes the same JSON that
// `--json` prints to `out`, atomically. Retrainings are saved in the server's retraining
// cache ($TDA_CACHE_DIR/retrainings). Restartable (a rerun reads the saved retraining).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "jobs/job_context.h"
#include "jobs/job_kinds.h"

namespace tda {

const JobKind& EvalJobKind();

// `spec_json` is a normalised spec (every field present) as compact JSON. Returns `out`.
[[nodiscard]] absl::StatusOr<std::string> RunEvalJob(const std::string& spec_json,
                                                     JobContext& context);

}  // namespace tda
