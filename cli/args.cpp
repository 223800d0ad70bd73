#include "cli/args.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>

namespace rawflow::cli {
namespace {

// CLI11's help, but with the command's own usage line: the synopsis says which options go
// together (`-p TEXT | --tokens IDS`), which a generated "[OPTIONS]" cannot.
class HelpFormatter : public CLI::Formatter {
 public:
  explicit HelpFormatter(std::string usage) : usage_(std::move(usage)) {
    column_width(30);
    label("TEXT", "V");
  }
  std::string make_usage(const CLI::App*, std::string) const override { return usage_ + "\n"; }

 private:
  std::string usage_;
};

bool looks_like_option(const std::string& token) {
  // "-5" is a (negative) number, "-" a file name meaning stdin: both are arguments.
  return token.size() > 1 && token[0] == '-' && !std::isdigit(static_cast<unsigned char>(token[1]));
}

}  // namespace

Args::Args(std::string command, std::string synopsis)
    : command_(std::move(command)), app_(std::make_unique<CLI::App>()) {
  app_->name("rawflow " + command_);
  // An option given twice keeps its last value, as a shell user re-running with one more
  // `--temp` expects.
  app_->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // Unknown options and stray arguments are collected rather than thrown so that the message
  // says which one, in rawflow's words, followed by the command's help.
  app_->allow_extras();
  // CLI11's help flag throws as soon as it is seen; ours is an ordinary flag, looked at after the
  // whole line was checked (a typo next to --help is still reported).
  app_->set_help_flag();
  app_->add_flag("-h,--help", help_requested_, "show this help");
  app_->formatter(std::make_shared<HelpFormatter>("usage: rawflow " + command_ + " " + synopsis));
}

Args::~Args() = default;

Args& Args::option(const std::string& name, const std::string& short_name, const std::string& help,
                   std::optional<std::string> def) {
  auto spec = std::make_unique<Spec>();
  spec->name = name;
  spec->def = std::move(def);
  const std::string names = short_name.empty() ? name : short_name + "," + name;
  // The default goes into the text rather than CLI11's "[default]" column: some defaults are
  // resolved later (from the model file) and say so in the help itself.
  spec->option = app_->add_option(names, spec->value,
                                  help + (spec->def ? " (default " + *spec->def + ")" : ""));
  specs_.push_back(std::move(spec));
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  auto spec = std::make_unique<Spec>();
  spec->name = name;
  spec->is_flag = true;
  spec->option = app_->add_flag(name, help);
  specs_.push_back(std::move(spec));
  return *this;
}

Args& Args::positional(const std::string& name, const std::string& help) {
  accepts_positional_ = true;
  app_->add_option(name, positionals_, help)->type_name("");
  return *this;
}

const Args::Spec* Args::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s->name == name) return s.get();
  return nullptr;
}

void Args::parse(const std::vector<std::string>& argv) {
  const std::string where = "rawflow " + command_ + ": ";
  // CLI11 reads `--greedy=0` as a flag set to false, which flag_set() would take for "given":
  // a flag takes no value at all.
  for (const std::string& token : argv) {
    const size_t eq = token.find('=');
    if (!token.starts_with("--") || eq == std::string::npos) continue;
    const Spec* s = find(token.substr(0, eq));
    if (s && s->is_flag) throw UsageError(where + "`" + s->name + "` takes no value");
  }
  // CLI11 takes the arguments last-first.
  std::vector<std::string> reversed(argv.rbegin(), argv.rend());
  try {
    app_->parse(reversed);
  } catch (const CLI::ArgumentMismatch& e) {
    // "--model: 1 required V missing": an option at the end of the line (otherwise the next
    // argument is its value, whatever it looks like, as before).
    const std::string what = e.what();
    const std::string option = what.substr(0, what.find(':'));
    throw UsageError(where + "option `" + option + "` needs a value");
  } catch (const CLI::ParseError& e) {
    throw UsageError(where + e.what());
  }
  const std::vector<std::string> extras = app_->remaining();
  if (!extras.empty()) {
    const std::string& first = extras.front();
    if (looks_like_option(first))
      throw UsageError(where + "unknown option `" + first.substr(0, first.find('=')) + "`\n" +
                       help());
    throw UsageError(where + "unexpected argument `" + first + "`\n" + help());
  }
}

bool Args::has(const std::string& name) const {
  const Spec* s = find(name);
  return s && (s->option->count() > 0 || s->def);
}

bool Args::flag_set(const std::string& name) const {
  const Spec* s = find(name);
  return s && s->option->count() > 0;
}

std::optional<std::string> Args::get_opt(const std::string& name) const {
  const Spec* s = find(name);
  if (!s) return std::nullopt;
  if (s->option->count() > 0) return s->value;
  return s->def;
}

std::string Args::get(const std::string& name) const {
  auto v = get_opt(name);
  if (!v)
    throw UsageError("rawflow " + command_ + ": missing required option `" + name + "`\n" + help());
  return *v;
}

long long Args::get_int(const std::string& name) const {
  std::string v = get(name);
  try {
    size_t used = 0;
    long long r = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return r;
  } catch (const std::exception&) {
    throw UsageError("rawflow " + command_ + ": option `" + name + "` wants an integer, got `" + v +
                     "`");
  }
}

double Args::get_double(const std::string& name) const {
  std::string v = get(name);
  try {
    size_t used = 0;
    double r = std::stod(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return r;
  } catch (const std::exception&) {
    throw UsageError("rawflow " + command_ + ": option `" + name + "` wants a number, got `" + v +
                     "`");
  }
}

bool Args::parse_or_help(const std::vector<std::string>& argv) {
  parse(argv);
  if (help_requested_) std::printf("%s", help().c_str());
  return !help_requested_;
}

std::string Args::help() const { return app_->help(); }

std::vector<std::string> take_set_overrides(const std::vector<std::string>& argv,
                                            const std::string& command,
                                            std::vector<std::string>& sets) {
  std::vector<std::string> rest;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--set") {
      if (i + 1 >= argv.size()) throw UsageError("rawflow " + command + ": --set needs KEY=VALUE");
      sets.push_back(argv[++i]);
    } else if (argv[i].rfind("--set=", 0) == 0) {
      sets.push_back(argv[i].substr(6));
    } else {
      rest.push_back(argv[i]);
    }
  }
  return rest;
}

}  // namespace rawflow::cli
