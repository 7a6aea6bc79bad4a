// A small command-line flag parser for one (sub)command: `--name value`, `--name=value`,
// boolean switches (`--json`, `--json=false`), defaults, required flags, repeatable flags,
// typed values checked at parse time, unknown flags refused with a clear message, and a
// generated --help. No global state (unlike absl/flags): each subcommand owns one parser.
//
// Typical use:
//   FlagParser flags("tda describe", "(--server ADDR | --index DIR) [--json]", "Describes ...");
//   flags.AddString("server", "ADDR", "", "address of a running tda-server");
//   if (std::optional<int> exit = flags.ParseOrExit(args)) return *exit;
//   std::string server = flags.GetString("server");
//
// Not thread-safe; Get* on a name that was never added aborts (a programming error).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tda {

class FlagParser {
 public:
  // `command` as typed ("tda index build"), `usage` the argument synopsis shown after it,
  // `summary` a paragraph describing the command.
  FlagParser(std::string command, std::string usage, std::string summary);

  void AddString(const std::string& name, const std::string& value_name,
                 const std::string& default_value, const std::string& help);
  void AddRequiredString(const std::string& name, const std::string& value_name,
                         const std::string& help);
  void AddInt(const std::string& name, const std::string& value_name, int64_t default_value,
              const std::string& help);
  void AddDouble(const std::string& name, const std::string& value_name, double default_value,
                 const std::string& help);
  // A switch, false unless given.
  void AddBool(const std::string& name, const std::string& help);
  // May be given several times; GetRepeated returns the values in order.
  void AddRepeated(const std::string& name, const std::string& value_name, const std::string& help);
  // Free text appended to --help (e.g. examples).
  void AddNote(const std::string& text);

  // Parses `args` (without the command words). kInvalidArgument naming the flag for unknown
  // flags, missing values, malformed numbers, positional arguments and missing required flags.
  // After `--help` (or `-h`) parsing stops and help_requested() is true.
  [[nodiscard]] absl::Status Parse(const std::vector<std::string>& args);
  bool help_requested() const { return help_requested_; }

  // Parse, then: on --help print Help() to stdout and return 0; on an error print
  // UsageError's message to stderr and return 2; otherwise nullopt (go on).
  std::optional<int> ParseOrExit(const std::vector<std::string>& args);
  // Prints "tda: error: <message>" and a pointer to --help to stderr; returns exit code 2.
  int UsageError(const std::string& message) const;

  std::string Help() const;

  bool IsSet(const std::string& name) const;  // given on the command line
  std::string GetString(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  std::vector<std::string> GetRepeated(const std::string& name) const;

 private:
  enum class Kind { kString, kInt, kDouble, kBool, kRepeated };
  struct Flag {
    Kind kind = Kind::kString;
    std::string value_name;
    std::string help;
    std::string default_value;
    bool required = false;
    bool set = false;
    std::vector<std::string> values;  // parsed values as given (one unless kRepeated)
  };
  static Flag MakeFlag(Kind kind, const std::string& value_name, const std::string& help,
                       const std::string& default_value);
  void Add(const std::string& name, Flag flag);
  const Flag& Find(const std::string& name, Kind kind) const;
  [[nodiscard]] absl::Status SetValue(const std::string& name, Flag& flag, const std::string& value);

  std::string command_, usage_, summary_;
  std::vector<std::string> order_;  // names in the order added, for --help
  std::map<std::string, Flag> flags_;
  std::vector<std::string> notes_;
  bool help_requested_ = false;
};

// Parses a --hidden value: layer widths separated by commas ("128,64"), or "none" / empty for
// no hidden layer. kInvalidArgument naming the text otherwise.
[[nodiscard]] absl::Status ParseLayerWidths(const std::string& text, std::vector<int64_t>* widths);

}  // namespace tda
