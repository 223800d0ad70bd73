#include "pipeline/batch_inputs.h"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

namespace rawflow::pipeline {
namespace {

namespace fs = std::filesystem;

bool is_url(const std::string& s) { return s.find("://") != std::string::npos; }

bool is_pattern(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_media_file(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  if (ext.size() < 2) return false;
  const auto& known = media_extensions();
  return std::find(known.begin(), known.end(), ext.substr(1)) != known.end();
}

std::vector<std::string> media_files_under(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error(dir + ": " + ec.message());
    if (it->is_regular_file(ec) && is_media_file(it->path())) out.push_back(it->path().string());
  }
  if (ec) throw std::runtime_error(dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> glob_matches(const std::string& pattern) {
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  if (rc == GLOB_NOMATCH || out.empty())
    throw std::runtime_error(pattern + ": the pattern matches no file");
  if (rc != 0) throw std::runtime_error(pattern + ": cannot expand the pattern");
  std::sort(out.begin(), out.end());
  return out;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

int64_t parse_index(const char* what, const std::string& text) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    throw std::runtime_error(std::string(what) + " = `" + text + "` is not a whole number");
  return v;
}

}  // namespace

const std::vector<std::string>& media_extensions() {
  static const std::vector<std::string> kExt = {"3gp", "aac", "avi",  "flac", "flv", "m2ts", "m4a",
                                                "m4v", "mka", "mkv",  "mov",  "mp3", "mp4",  "mpeg",
                                                "mpg", "mts", "mxf",  "oga",  "ogg", "ogv",  "opus",
                                                "ts",  "wav", "webm", "wma",  "wmv"};
  return kExt;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  const auto add = [&](const std::string& s) {
    if (seen.insert(s).second) out.push_back(s);
  };
  for (const std::string& a : args) {
    std::error_code ec;
    if (is_url(a)) {
      add(a);
    } else if (fs::is_directory(a, ec)) {
      for (const auto& f : media_files_under(a)) add(f);
    } else if (fs::exists(a, ec)) {
      add(a);
    } else if (is_pattern(a)) {
      for (const auto& f : glob_matches(a)) add(f);
    } else {
      throw std::runtime_error(a + ": no such file or directory");
    }
  }
  return out;
}

std::vector<std::string> read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the manifest");
  const fs::path base = fs::path(path).parent_path();
  std::vector<std::string> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    const std::string entry = trim(line);
    if (entry.empty() || entry[0] == '#') continue;
    if (is_url(entry) || fs::path(entry).is_absolute() || base.empty())
      out.push_back(entry);
    else
      out.push_back((base / entry).string());
  }
  if (in.bad()) throw std::runtime_error(path + ": read error");
  return out;
}

Shard resolve_shard(std::optional<int64_t> index, std::optional<int64_t> count,
                    const std::function<const char*(const char*)>& getenv) {
  Shard s;
  s.count = count.value_or(1);
  if (s.count < 1)
    throw std::runtime_error("--shard-count = " + std::to_string(s.count) + ": must be at least 1");
  const char* from = "--shard-index";
  if (index) {
    s.index = *index;
  } else {
    for (const char* var : {"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"})
      if (const char* v = getenv(var); v && *v) {
        s.index = parse_index(var, v);
        from = var;
        break;
      }
  }
  if (s.index < 0 || s.index >= s.count)
    throw std::runtime_error(std::string(from) + " = " + std::to_string(s.index) +
                             " is outside 0.." + std::to_string(s.count - 1) +
                             " (--shard-count = " + std::to_string(s.count) + ")");
  return s;
}

std::vector<size_t> shard_positions(size_t n, const Shard& s) {
  std::vector<size_t> out;
  for (size_t k = static_cast<size_t>(s.index); k < n; k += static_cast<size_t>(s.count))
    out.push_back(k);
  return out;
}

std::string fnv1a64_hex(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string absolute_input(const std::string& input) {
  if (is_url(input)) return input;
  return fs::absolute(input).lexically_normal().string();
}

std::string input_id(const std::string& input, const std::string& config_digest) {
  std::string name = fs::path(input).filename().string();
  if (name.empty()) name = "input";
  std::string safe;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    safe += ok ? c : '_';
    if (safe.size() == 80) break;
  }
  return safe + "-" + fnv1a64_hex(input + '\n' + config_digest).substr(0, 12);
}

}  // namespace rawflow::pipeline
