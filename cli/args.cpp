#include "cli/args.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace rawflow::cli {

Args& Args::option(const std::string& name, const std::string& short_name, const std::string& help,
                   std::optional<std::string> def) {
  specs_.push_back({name, short_name, help, false, std::move(def)});
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, true, std::nullopt});
  return *this;
}

Args& Args::positional(const std::string& name, const std::string& help) {
  accepts_positional_ = true;
  positional_name_ = name;
  positional_help_ = help;
  return *this;
}

const Args::Spec* Args::lookup(const std::string& token) const {
  for (const auto& s : specs_)
    if (token == s.name || (!s.short_name.empty() && token == s.short_name)) return &s;
  return nullptr;
}

void Args::parse(const std::vector<std::string>& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string tok = argv[i];
    if (tok == "--help" || tok == "-h") {
      help_requested_ = true;
      continue;
    }
    std::optional<std::string> inline_value;
    if (tok.rfind("--", 0) == 0) {
      auto eq = tok.find('=');
      if (eq != std::string::npos) {
        inline_value = tok.substr(eq + 1);
        tok = tok.substr(0, eq);
      }
    }
    if (tok.size() > 1 && tok[0] == '-' &&
        !(tok.size() > 1 && std::isdigit(static_cast<unsigned char>(tok[1])))) {
      const Spec* s = lookup(tok);
      if (!s) throw UsageError("rawflow " + command_ + ": unknown option `" + tok + "`\n" + help());
      if (s->is_flag) {
        if (inline_value)
          throw UsageError("rawflow " + command_ + ": `" + s->name + "` takes no value");
        values_[s->name] = "1";
        continue;
      }
      if (inline_value) {
        values_[s->name] = *inline_value;
      } else {
        if (i + 1 >= argv.size())
          throw UsageError("rawflow " + command_ + ": option `" + s->name + "` needs a value");
        values_[s->name] = argv[++i];
      }
      continue;
    }
    if (!accepts_positional_)
      throw UsageError("rawflow " + command_ + ": unexpected argument `" + tok + "`\n" + help());
    positionals_.push_back(tok);
  }
}

bool Args::has(const std::string& name) const {
  if (values_.count(name)) return true;
  for (const auto& s : specs_)
    if (s.name == name && s.def) return true;
  return false;
}

bool Args::flag_set(const std::string& name) const { return values_.count(name) > 0; }

std::optional<std::string> Args::get_opt(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  for (const auto& s : specs_)
    if (s.name == name) return s.def;
  return std::nullopt;
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

std::string Args::help() const {
  std::ostringstream o;
  o << "usage: rawflow " << command_ << " " << synopsis_ << "\n";
  const auto row = [&o](std::string left, const std::string& text) {
    left.resize(std::max<size_t>(left.size(), 28), ' ');
    o << left << text << "\n";
  };
  for (const auto& s : specs_)
    row("  " + s.name + (s.short_name.empty() ? "" : ", " + s.short_name) + (s.is_flag ? "" : " V"),
        s.help + (s.def ? " (default " + *s.def + ")" : ""));
  row("  --help, -h", "show this help");
  if (accepts_positional_) o << "  " << positional_name_ << "    " << positional_help_ << "\n";
  return o.str();
}

}  // namespace rawflow::cli
