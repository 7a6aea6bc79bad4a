#include "jobs/job_spec.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tda {

namespace {

using json = nlohmann::json;
using Type = JobSpecField::Type;

bool HasType(const json& value, Type type) {
  switch (type) {
    case Type::kString:
      return value.is_string();
    case Type::kInt:
      return value.is_number_integer();
    case Type::kDouble:
      return value.is_number();
    case Type::kBool:
      return value.is_boolean();
  }
  return false;
}

const char* TypeName(Type type) {
  switch (type) {
    case Type::kString:
      return "a string";
    case Type::kInt:
      return "an integer";
    case Type::kDouble:
      return "a number";
    case Type::kBool:
      return "true or false";
  }
  return "?";
}

std::string Number(double value) { return absl::StrFormat("%.15g", value); }

}  // namespace

bool IsOutput(PathRole role) {
  return role == PathRole::kOutputFile || role == PathRole::kOutputDirectory;
}

bool NumberRange::Contains(double value) const {
  if (!std::isfinite(value)) return false;
  if (special && value == *special) return true;
  const bool above_min = min_exclusive ? value > min : value >= min;
  const bool below_max = max_exclusive ? value < max : value <= max;
  return above_min && below_max;
}

std::string NumberRange::Describe() const {
  return absl::StrCat(special ? Number(*special) + " or " : "", min_exclusive ? "(" : "[",
                      Number(min), ", ", Number(max), max_exclusive ? ")" : "]");
}

NumberRange Closed(double min, double max) { return {min, max, false, false, std::nullopt}; }
NumberRange LeftOpen(double min, double max) { return {min, max, true, false, std::nullopt}; }
NumberRange Open(double min, double max) { return {min, max, true, true, std::nullopt}; }
NumberRange ClosedOr(double special, double min, double max) {
  return {min, max, false, false, special};
}

JobSpecField StringField(std::string name, std::string default_json, std::string help) {
  return {std::move(name), Type::kString,   std::move(default_json),
          std::move(help), PathRole::kNone, std::nullopt};
}

JobSpecField PathField(std::string name, PathRole role, std::string default_json,
                       std::string help) {
  return {std::move(name), Type::kString, std::move(default_json),
          std::move(help), role,          std::nullopt};
}

JobSpecField IntField(std::string name, std::string default_json, std::string help,
                      NumberRange range) {
  return {std::move(name), Type::kInt,      std::move(default_json),
          std::move(help), PathRole::kNone, range};
}

JobSpecField DoubleField(std::string name, std::string default_json, std::string help,
                         NumberRange range) {
  return {std::move(name), Type::kDouble,   std::move(default_json),
          std::move(help), PathRole::kNone, range};
}

JobSpecField OverwriteField() {
  return {"overwrite",
          Type::kBool,
          "false",
          "replace an existing output that is a tda index or a file a tda job wrote (never "
          "anything else)",
          PathRole::kNone,
          std::nullopt};
}

std::string FieldHelp(const JobSpecField& field) {
  std::string help = field.help;
  if (field.range) absl::StrAppend(&help, "; range ", field.range->Describe());
  if (field.path == PathRole::kInput) absl::StrAppend(&help, "; input path, under the server's --data-root");
  if (IsOutput(field.path)) absl::StrAppend(&help, "; output path, under the server's --output-root");
  if (field.default_value.empty()) absl::StrAppend(&help, " (required)");
  return help;
}

absl::StatusOr<std::string> NormalizeSpec(const JobKind& kind, const std::string& spec_json) {
  json spec = json::parse(spec_json.empty() ? "{}" : spec_json, nullptr, false);
  if (!spec.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind.name, " spec is not a JSON object: '", spec_json, "'"));
  }
  for (const auto& item : spec.items()) {
    bool known = false;
    for (const JobSpecField& f : kind.fields) known = known || f.name == item.key();
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat(kind.name, " spec: unknown field '", item.key(), "'"));
    }
  }
  for (const JobSpecField& f : kind.fields) {
    if (!spec.contains(f.name)) {
      if (f.default_value.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(kind.name, " spec: required field '", f.name, "' is missing"));
      }
      spec[f.name] = json::parse(f.default_value);
      continue;
    }
    const json& value = spec[f.name];
    if (!HasType(value, f.type)) {
      return absl::InvalidArgumentError(absl::StrCat(kind.name, " spec: field '", f.name,
                                                     "' must be ", TypeName(f.type), ", got ",
                                                     value.dump()));
    }
    if (f.range && !f.range->Contains(value.get<double>())) {
      return absl::InvalidArgumentError(absl::StrCat(kind.name, " spec: field '", f.name, "' is ",
                                                     value.dump(), ", outside its range ",
                                                     f.range->Describe()));
    }
    if (f.path != PathRole::kNone && f.default_value.empty() && value.get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kind.name, " spec: required path '", f.name, "' is empty"));
    }
  }
  return spec.dump();
}

}  // namespace tda
