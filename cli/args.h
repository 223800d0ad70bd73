#pragma once
// Command-line options of one subcommand: declared once (name, value or flag, help), parsed, and
// reported with one clear message on misuse.
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rawflow::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(std::string command, std::string synopsis)
      : command_(std::move(command)), synopsis_(std::move(synopsis)) {}

  // Declares an option taking a value ("--model", "-m"); `short_name` may be empty.
  Args& option(const std::string& name, const std::string& short_name, const std::string& help,
               std::optional<std::string> def = std::nullopt);
  // Declares a boolean flag.
  Args& flag(const std::string& name, const std::string& help);
  // Declares that positional arguments are accepted (with a name for the help text).
  Args& positional(const std::string& name, const std::string& help);

  // Parses argv (without the command word). Throws UsageError for unknown options, missing values.
  // `--help` / `-h` are accepted by every command (help_requested()).
  void parse(const std::vector<std::string>& argv);
  // parse(), then, when help was asked for, prints help() to stdout and returns false: the
  // command's whole answer.
  bool parse_or_help(const std::vector<std::string>& argv);
  bool help_requested() const { return help_requested_; }

  bool has(const std::string& name) const;
  bool flag_set(const std::string& name) const;
  std::string get(const std::string& name) const;  // throws UsageError if absent and no default
  std::optional<std::string> get_opt(const std::string& name) const;
  long long get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  std::string help() const;

 private:
  struct Spec {
    std::string name, short_name, help;
    bool is_flag = false;
    std::optional<std::string> def;
  };
  const Spec* lookup(const std::string& token) const;
  std::string command_, synopsis_;
  std::vector<Spec> specs_;
  std::string positional_name_, positional_help_;
  bool accepts_positional_ = false;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
  bool help_requested_ = false;
};

}  // namespace rawflow::cli
