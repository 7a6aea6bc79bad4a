#include "common/flags.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace tda {

namespace {

absl::Status ParseBool(const std::string& name, const std::string& text, bool* out) {
  const std::string v = absl::AsciiStrToLower(text);
  if (v == "true" || v == "1" || v == "yes") {
    *out = true;
  } else if (v == "false" || v == "0" || v == "no") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " takes true or false, got '", text, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

FlagParser::FlagParser(std::string command, std::string usage, std::string summary)
    : command_(std::move(command)), usage_(std::move(usage)), summary_(std::move(summary)) {}

FlagParser::Flag FlagParser::MakeFlag(Kind kind, const std::string& value_name,
                                      const std::string& help, const std::string& default_value) {
  Flag flag;
  flag.kind = kind;
  flag.value_name = value_name;
  flag.help = help;
  flag.default_value = default_value;
  return flag;
}

void FlagParser::Add(const std::string& name, Flag flag) {
  if (flags_.count(name) != 0 || name == "help") {
    std::fprintf(stderr, "internal error: flag --%s defined twice\n", name.c_str());
    std::abort();
  }
  order_.push_back(name);
  flags_.emplace(name, std::move(flag));
}

void FlagParser::AddString(const std::string& name, const std::string& value_name,
                           const std::string& default_value, const std::string& help) {
  Add(name, MakeFlag(Kind::kString, value_name, help, default_value));
}

void FlagParser::AddRequiredString(const std::string& name, const std::string& value_name,
                                   const std::string& help) {
  Flag flag = MakeFlag(Kind::kString, value_name, help, "");
  flag.required = true;
  Add(name, std::move(flag));
}

void FlagParser::AddInt(const std::string& name, const std::string& value_name,
                        int64_t default_value, const std::string& help) {
  Add(name, MakeFlag(Kind::kInt, value_name, help, absl::StrCat(default_value)));
}

void FlagParser::AddDouble(const std::string& name, const std::string& value_name,
                           double default_value, const std::string& help) {
  Add(name, MakeFlag(Kind::kDouble, value_name, help, absl::StrCat(default_value)));
}

void FlagParser::AddBool(const std::string& name, const std::string& help) {
  Add(name, MakeFlag(Kind::kBool, "", help, "false"));
}

void FlagParser::AddRepeated(const std::string& name, const std::string& value_name,
                             const std::string& help) {
  Add(name, MakeFlag(Kind::kRepeated, value_name, help, ""));
}

void FlagParser::AddNote(const std::string& text) { notes_.push_back(text); }

absl::Status FlagParser::SetValue(const std::string& name, Flag& flag, const std::string& value) {
  switch (flag.kind) {
    case Kind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes an integer, got '", value, "'"));
      }
      break;
    }
    case Kind::kDouble: {
      double v;
      if (!absl::SimpleAtod(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes a number, got '", value, "'"));
      }
      break;
    }
    case Kind::kBool: {
      bool v;
      if (absl::Status s = ParseBool(name, value, &v); !s.ok()) return s;
      break;
    }
    case Kind::kString:
    case Kind::kRepeated:
      break;
  }
  if (flag.kind == Kind::kRepeated) {
    flag.values.push_back(value);
  } else if (flag.set) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " given more than once"));
  } else {
    flag.values = {value};
  }
  flag.set = true;
  return absl::OkStatus();
}

absl::Status FlagParser::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      return absl::OkStatus();
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    Flag& flag = it->second;
    if (!value.has_value()) {
      if (flag.kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (", flag.value_name, ")"));
      }
    }
    if (absl::Status s = SetValue(name, flag, *value); !s.ok()) return s;
  }
  for (const std::string& name : order_) {
    const Flag& flag = flags_.at(name);
    if (flag.required && !flag.set) {
      return absl::InvalidArgumentError(absl::StrCat("missing required flag --", name));
    }
  }
  return absl::OkStatus();
}

std::optional<int> FlagParser::ParseOrExit(const std::vector<std::string>& args) {
  absl::Status status = Parse(args);
  if (help_requested_) {
    std::cout << Help();
    return 0;
  }
  if (!status.ok()) return UsageError(std::string(status.message()));
  return std::nullopt;
}

int FlagParser::UsageError(const std::string& message) const {
  std::cerr << "tda: error: " << message << "\n"
            << "Run '" << command_ << " --help' for usage.\n";
  return 2;
}

std::string FlagParser::Help() const {
  std::string out =
      absl::StrCat("Usage: ", command_, " ", usage_, "\n\n", summary_, "\n\nFlags:\n");
  auto row = [&out](const std::string& left, const std::string& help) {
    if (left.size() <= 26) {
      absl::StrAppendFormat(&out, "  %-26s %s\n", left, help);
    } else {
      absl::StrAppendFormat(&out, "  %s\n  %-26s %s\n", left, "", help);
    }
  };
  for (const std::string& name : order_) {
    const Flag& flag = flags_.at(name);
    std::string left = absl::StrCat("--", name);
    if (flag.kind != Kind::kBool) absl::StrAppend(&left, " ", flag.value_name);
    std::string help = flag.help;
    if (flag.required) {
      absl::StrAppend(&help, " (required)");
    } else if (flag.kind == Kind::kRepeated) {
      absl::StrAppend(&help, " (repeatable)");
    } else if (flag.kind != Kind::kBool && !flag.default_value.empty()) {
      absl::StrAppend(&help, " (default: ", flag.default_value, ")");
    }
    row(left, help);
  }
  row("--help", "show this help");
  for (const std::string& note : notes_) absl::StrAppend(&out, "\n", note, "\n");
  return out;
}

const FlagParser::Flag& FlagParser::Find(const std::string& name, Kind kind) const {
  auto it = flags_.find(name);
  if (it == flags_.end() || it->second.kind != kind) {
    std::fprintf(stderr, "internal error: flag --%s read with the wrong type or not defined\n",
                 name.c_str());
    std::abort();
  }
  return it->second;
}

bool FlagParser::IsSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.set;
}

std::string FlagParser::GetString(const std::string& name) const {
  const Flag& flag = Find(name, Kind::kString);
  return flag.set ? flag.values[0] : flag.default_value;
}

int64_t FlagParser::GetInt(const std::string& name) const {
  const Flag& flag = Find(name, Kind::kInt);
  int64_t v = 0;
  (void)absl::SimpleAtoi(flag.set ? flag.values[0] : flag.default_value, &v);
  return v;
}

double FlagParser::GetDouble(const std::string& name) const {
  const Flag& flag = Find(name, Kind::kDouble);
  double v = 0;
  (void)absl::SimpleAtod(flag.set ? flag.values[0] : flag.default_value, &v);
  return v;
}

bool FlagParser::GetBool(const std::string& name) const {
  const Flag& flag = Find(name, Kind::kBool);
  bool v = false;
  if (flag.set) (void)ParseBool(name, flag.values[0], &v);
  return v;
}

std::vector<std::string> FlagParser::GetRepeated(const std::string& name) const {
  return Find(name, Kind::kRepeated).values;
}

absl::Status ParseLayerWidths(const std::string& text, std::vector<int64_t>* widths) {
  widths->clear();
  if (text.empty() || text == "none") return absl::OkStatus();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t width = 0;
    if (!absl::SimpleAtoi(part, &width) || width <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--hidden takes positive layer widths separated by commas (e.g. 128,64) or 'none', got '",
          text, "'"));
    }
    widths->push_back(width);
  }
  return absl::OkStatus();
}

}  // namespace tda
