// The declaration of a job kind's spec: its fields, their types, defaults, valid ranges and
// which of them are paths (inputs or outputs, job_paths.h). Both the server (validating a
// submission, NormalizeSpec) and the CLI (generating `tda jobs submit KIND --field value`
// flags and their --help) use the declaration.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tda {

// What a string field names on the server's filesystem (see job_paths.h for the rules).
enum class PathRole {
  kNone,             // not a path
  kInput,            // read: under --data-root or --output-root
  kOutputFile,       // written: under --output-root, never replacing a foreign file
  kOutputDirectory,  // written: under --output-root, never replacing a foreign directory
};

bool IsOutput(PathRole role);

// The valid values of a number: [min, max] (either end exclusive when asked), plus one
// out-of-range `special` value with its own meaning (e.g. -1: "the default"). NaN and
// infinities are never valid.
struct NumberRange {
  double min = 0;
  double max = 0;
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::optional<double> special;

  bool Contains(double value) const;
  std::string Describe() const;  // "[1, 10000]", "(0, 604800]", "-1 or [1, 1e+09]"
};

// Ranges by their shape.
NumberRange Closed(double min, double max);                    // [min, max]
NumberRange LeftOpen(double min, double max);                  // (min, max]
NumberRange Open(double min, double max);                      // (min, max)
NumberRange ClosedOr(double special, double min, double max);  // special or [min, max]

struct JobSpecField {
  enum class Type { kString, kInt, kDouble, kBool };
  std::string name;  // JSON key (snake_case); the CLI flag uses dashes
  Type type = Type::kString;
  std::string default_value;  // as JSON text; empty = required
  std::string help;
  PathRole path = PathRole::kNone;   // strings only; an optional path defaults to ""
  std::optional<NumberRange> range;  // numbers only: always set for them
};

// Field constructors, so that every kind declares each field on one line or two.
JobSpecField StringField(std::string name, std::string default_json, std::string help);
JobSpecField PathField(std::string name, PathRole role, std::string default_json, std::string help);
JobSpecField IntField(std::string name, std::string default_json, std::string help,
                      NumberRange range);
JobSpecField DoubleField(std::string name, std::string default_json, std::string help,
                         NumberRange range);
// `overwrite` (bool, default false): may replace an existing tda index or tda results file
// (job_outputs.h); every kind with outputs declares it.
JobSpecField OverwriteField();

struct JobKind {
  std::string name;  // "build-index", ...
  std::string summary;
  std::vector<JobSpecField> fields;
  std::vector<std::string> stages;  // the progress stages in order, to compute an overall fraction
  bool restartable = false;         // re-run from scratch after a crash (else: interrupted)
};

// The field's help with "(required)" and its valid range appended, as the CLI prints it.
std::string FieldHelp(const JobSpecField& field);

// Checks a spec (a JSON object) against `kind`: unknown fields, wrong types, missing required
// fields and numbers out of their range are kInvalidArgument naming the field (and the value
// and the range). Returns the spec with every default filled in (compact JSON).
[[nodiscard]] absl::StatusOr<std::string> NormalizeSpec(const JobKind& kind,
                                                        const std::string& spec_json);

}  // namespace tda
