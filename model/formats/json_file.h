#pragma once
// config.json and friends: parsed, or one ModelFileError naming the file.
#include <nlohmann/json.hpp>
#include <string>

namespace rawflow {

nlohmann::json load_json_file(const std::string& path);

}  // namespace rawflow
