#include "client/jobs_client.h"

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"

namespace tda {
namespace {

std::string FlagName(const std::string& field) { return absl::StrReplaceAll(field, {{"_", "-"}}); }

}  // namespace

std::string FormatTime(double seconds) {
  if (seconds <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

bool TakePositional(Args& args, std::string* value) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("-", 0) == 0) {
      if (args[i].find('=') == std::string::npos && i + 1 < args.size() && args[i] != "--json" &&
          args[i] != "--watch" && args[i] != "--log" && args[i] != "--overwrite" &&
          args[i] != "--help" && args[i] != "-h") {
        ++i;  // skip the flag's value
      }
      continue;
    }
    *value = args[i];
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  return false;
}

int ConnectError(const FlagParser& flags, const absl::Status& status) {
  if (absl::IsInvalidArgument(status)) return flags.UsageError(std::string(status.message()));
  return RuntimeError(status);
}

void AddServerFlags(FlagParser& flags) {
  AddConnectionFlags(flags, /*server_required=*/true,
                     "address of a tda-server started with --state-dir");
  flags.AddBool("json", "print the API's JSON instead of a table");
}

void AddSpecFlags(FlagParser& flags, const JobKind& kind) {
  for (const JobSpecField& f : kind.fields) {
    const std::string help = FieldHelp(f);
    nlohmann::json def =
        f.default_value.empty() ? nlohmann::json() : nlohmann::json::parse(f.default_value);
    switch (f.type) {
      case JobSpecField::Type::kString:
        flags.AddString(FlagName(f.name), "VALUE", def.is_string() ? def.get<std::string>() : "",
                        help);
        break;
      case JobSpecField::Type::kInt:
        flags.AddInt(FlagName(f.name), "N", def.is_number() ? def.get<int64_t>() : 0, help);
        break;
      case JobSpecField::Type::kDouble:
        flags.AddDouble(FlagName(f.name), "X", def.is_number() ? def.get<double>() : 0, help);
        break;
      case JobSpecField::Type::kBool:
        flags.AddBool(FlagName(f.name), help);
        break;
    }
  }
}

absl::StatusOr<std::string> SpecFromFlags(const FlagParser& flags, const JobKind& kind) {
  nlohmann::json spec = nlohmann::json::object();
  for (const JobSpecField& f : kind.fields) {
    const std::string flag = FlagName(f.name);
    if (!flags.IsSet(flag)) continue;
    switch (f.type) {
      case JobSpecField::Type::kString:
        spec[f.name] = flags.GetString(flag);  // paths as given: the server resolves them
        break;
      case JobSpecField::Type::kInt:
        spec[f.name] = flags.GetInt(flag);
        break;
      case JobSpecField::Type::kDouble:
        if (!std::isfinite(flags.GetDouble(flag))) {  // JSON has no NaN: say so here
          return absl::InvalidArgumentError(
              absl::StrCat("--", flag, " must be a finite number, got ", flags.GetDouble(flag)));
        }
        spec[f.name] = flags.GetDouble(flag);
        break;
      case JobSpecField::Type::kBool:
        spec[f.name] = flags.GetBool(flag);
        break;
    }
  }
  absl::StatusOr<std::string> normalized = NormalizeJobSpec(kind.name, spec.dump());
  if (!normalized.ok()) {
    // Name the flag rather than the JSON field.
    std::string message(normalized.status().message());
    for (const JobSpecField& f : kind.fields) {
      message = absl::StrReplaceAll(message, {{"'" + f.name + "'", "--" + FlagName(f.name)}});
    }
    return absl::InvalidArgumentError(message);
  }
  return spec.dump();
}

absl::StatusOr<int64_t> ParseId(const std::string& text) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(text, &id) || id <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a job or schedule id"));
  }
  return id;
}

}  // namespace tda
