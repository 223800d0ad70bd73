#include "model/formats/dtype.h"

#include <array>
#include <cctype>
#include <string>

namespace rawflow {
namespace {

constexpr std::array<DTypeTraits, 8> kTraits = {{
    {DType::F32, "f32", 1, 4},
    {DType::F16, "f16", 1, 2},
    {DType::Q4_0, "q4_0", 32, 18},
    {DType::Q8_0, "q8_0", 32, 34},
    {DType::Q4_K, "q4_K", 256, 144},
    {DType::Q5_K, "q5_K", 256, 176},
    {DType::Q6_K, "q6_K", 256, 210},
    {DType::BF16, "bf16", 1, 2},
}};

}  // namespace

const DTypeTraits& dtype_traits(DType t) {
  for (const auto& tr : kTraits)
    if (tr.type == t) return tr;
  return kTraits[0];  // unreachable for valid enum values
}

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  for (const auto& tr : kTraits)
    if (static_cast<uint32_t>(tr.type) == ggml_type) return tr.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  std::string lower;
  for (char c : name)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (const auto& tr : kTraits) {
    std::string n;
    for (char c : tr.name)
      n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (n == lower) return tr.type;
  }
  return std::nullopt;
}

size_t dtype_row_bytes(DType t, int64_t n) {
  const auto& tr = dtype_traits(t);
  return static_cast<size_t>(n / tr.block_elems) * tr.block_bytes;
}

}  // namespace rawflow
