// The pipeline config target: YAML text and `--set` overrides through load_config_string, which
// refuses with ConfigError (pipeline/config.h) or returns a checked config; a loaded config's
// dump_config text loads again to the same dump (`rawflow run --print-config` promises that).
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "fuzz/fuzz_targets.h"
#include "fuzz/scratch_files.h"
#include "pipeline/config.h"

namespace rawflow::fuzz {

namespace {

// Input layout: the overrides, one per line, then a NUL, then the YAML (no NUL: all YAML).
void split(std::string_view in, std::vector<std::string>& overrides, std::string& yaml) {
  const size_t nul = in.find('\0');
  if (nul == std::string_view::npos) {
    yaml.assign(in);
    return;
  }
  std::string_view sets = in.substr(0, nul);
  yaml.assign(in.substr(nul + 1));
  while (!sets.empty()) {
    const size_t nl = sets.find('\n');
    overrides.emplace_back(sets.substr(0, nl));
    if (nl == std::string_view::npos) break;
    sets.remove_prefix(nl + 1);
  }
}

}  // namespace

void config(const uint8_t* data, size_t size) {
  std::vector<std::string> overrides;
  std::string yaml;
  split(std::string_view(reinterpret_cast<const char*>(data), size), overrides, yaml);
  // Relative paths in the config resolve against the scratch directory, where nothing else lives.
  const std::string name = scratch_dir() + "/fuzz.yaml";
  std::string dump;
  try {
    dump = dump_config(load_config_string(yaml, name, overrides));
  } catch (const ConfigError&) {
    return;
  } catch (const std::exception& e) {
    fail("config",
         std::string("threw ") + typeid(e).name() + " instead of ConfigError: " + e.what());
  }
  std::string again;
  try {
    again = dump_config(load_config_string(dump, name));
  } catch (const std::exception& e) {
    fail("config", std::string("the dump of a loaded config does not load: ") + e.what() +
                       "\n--- dump:\n" + dump);
  }
  if (again != dump)
    fail("config", "the dump of a loaded config loads to another config\n--- first:\n" + dump +
                       "\n--- second:\n" + again);
}

}  // namespace rawflow::fuzz
