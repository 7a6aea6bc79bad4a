// The tda CLI's subcommands. Each takes the arguments after its command words and returns the
// process exit code: 0 success, 2 usage error (bad flags; message and a pointer to --help on
// stderr), 1 runtime error ("tda: error: <status message>" on stderr).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tda {

using Args = std::vector<std::string>;

int RunTrain(const Args& args);       // tda train
int RunTrainGpt(const Args& args);    // tda train --model-kind gpt
int RunGenerate(const Args& args);    // tda generate
int RunImportGpt2(const Args& args);  // tda import-gpt2
int RunImport(const Args& args);      // tda import --hf
int RunExportHf(const Args& args);    // tda export-hf
int RunIndexBuild(const Args& args);  // tda index build
int RunIndexVerify(const Args& args);  // tda index verify
int RunIndexDelete(const Args& args);  // tda index delete
int RunIndexAppend(const Args& args);  // tda index append
int RunIndexSplit(const Args& args);   // tda index split
int RunIndexSelfInfluence(const Args& args);  // tda index self-influence
int RunIndexAnn(const Args& args);     // tda index ann
int RunQuery(const Args& args);       // tda query
int RunDescribe(const Args& args);    // tda describe
int RunHealth(const Args& args);      // tda health
int RunEval(const Args& args);        // tda eval loo | lds
int RunJobs(const Args& args);        // tda jobs submit | list | get | watch | cancel | schedule
int RunData(const Args& args);        // tda data export | check
int RunAdmin(const Args& args);       // tda admin token create | revoke | list; tda admin reload

// Prints "tda: error: <message>" to stderr and returns 1.
int RuntimeError(const absl::Status& status);

}  // namespace tda
