#pragma once
// Command-line options of one subcommand: declared once (name, value or flag, help), parsed by
// CLI11, and reported with one clear message on misuse.
//
// The commands keep this small interface (declare, then ask by long name) rather than CLI11's
// bound variables: the shared option sets (engine, generation, media) are declared by one
// function and read by another, and defaults of sampling options come from the model file, so
// "was it given" matters as much as the value.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace rawflow::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(std::string command, std::string synopsis);
  ~Args();
  Args(const Args&) = delete;
  Args& operator=(const Args&) = delete;

  // Declares an option taking a value ("--model", "-m"); `short_name` may be empty. Given twice,
  // the last value counts.
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
    std::string name;
    bool is_flag = false;
    std::optional<std::string> def;
    CLI::Option* option = nullptr;  // owned by app_
    std::string value;              // CLI11 stores the (last) value here
  };
  const Spec* find(const std::string& name) const;
  std::string command_;
  std::unique_ptr<CLI::App> app_;
  std::vector<std::unique_ptr<Spec>> specs_;  // each on its own: CLI11 holds &Spec::value
  bool accepts_positional_ = false;
  std::vector<std::string> positionals_;
  bool help_requested_ = false;
};

// Splits `--set KEY=VALUE` / `--set=KEY=VALUE` (repeatable, which the single-valued options of
// Args are not) out of `argv`: the overrides in order into `sets`, the rest returned for Args.
// Throws UsageError ("rawflow <command>: --set needs KEY=VALUE") for a trailing --set.
std::vector<std::string> take_set_overrides(const std::vector<std::string>& argv,
                                            const std::string& command,
                                            std::vector<std::string>& sets);

}  // namespace rawflow::cli
