#include "model/formats/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "model/error.h"

namespace rawflow {
namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; a real 12B header is ~89 KB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::optional<DType> dtype_from_safetensors(std::string_view s) {
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  if (s == "F32") return DType::F32;
  return std::nullopt;
}

size_t elem_bytes(DType t) { return dtype_traits(t).block_bytes; }

// product(shape) * elem, or nullopt on overflow or a negative dimension.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, size_t elem) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::string_view safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::BF16:
      return "BF16";
    case DType::F16:
      return "F16";
    case DType::F32:
      return "F32";
    default:
      throw EngineError("safetensors holds only BF16, F16 and F32 tensors, not " +
                        std::string(dtype_name(t)));
  }
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = MappedFile::open(path);
  f->size_ = f->map_.size();
  if (f->size_ < 8)
    throw ModelFileError(path + ": file is " + std::to_string(f->size_) +
                         " bytes, too short for a safetensors header (at least 8)");
  f->base_ = f->map_.data();
  f->parse_header();  // on throw, the destructor unmaps
  return f;
}

SafetensorsFile::~SafetensorsFile() = default;

const TensorRef* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::parse_header() {
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base_[i];
  if (header_len > size_ - 8) {
    throw ModelFileError(path_ + ": header length " + std::to_string(header_len) +
                         " bytes runs past the end of the file (" + std::to_string(size_) +
                         " bytes)");
  }
  if (header_len > kMaxHeaderBytes) {
    throw ModelFileError(path_ + ": header length " + std::to_string(header_len) +
                         " bytes exceeds the 100 MB limit of the format");
  }
  data_offset_ = 8 + header_len;
  const size_t data_bytes = size_ - data_offset_;

  json header;
  try {
    header = json::parse(base_ + 8, base_ + data_offset_);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for `1e506`
    throw ModelFileError(path_ + ": header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw ModelFileError(path_ + ": header is not a JSON object");

  struct Span {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Span> spans;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw ModelFileError(path_ + ": `__metadata__` is not a JSON object");
      for (auto& [k, v] : entry.items())
        metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    const std::string where = path_ + ": tensor `" + name + "`";
    if (!entry.is_object()) throw ModelFileError(where + ": entry is not a JSON object");
    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) throw ModelFileError(where + ": no `dtype` string");
    auto dtype = dtype_from_safetensors(dt->get<std::string>());
    if (!dtype) {
      throw ModelFileError(where + " has dtype " + dt->get<std::string>() +
                           ", which rawflow does not read (BF16, F16 or F32)");
    }
    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) throw ModelFileError(where + ": no `shape` array");
    std::vector<int64_t> shape;
    for (const auto& d : *sh) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        throw ModelFileError(where + ": shape " + sh->dump() + " is not a list of sizes >= 0");
      shape.push_back(d.get<int64_t>());
    }
    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2 ||
        !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned()) {
      throw ModelFileError(where + ": `data_offsets` is not a pair of offsets >= 0");
    }
    const uint64_t begin = (*off)[0].get<uint64_t>();
    const uint64_t end = (*off)[1].get<uint64_t>();
    if (begin > end || end > data_bytes) {
      throw ModelFileError(where + ": data_offsets [" + std::to_string(begin) + ", " +
                           std::to_string(end) + "] lie outside the data section (" +
                           std::to_string(data_bytes) + " bytes after the header)");
    }
    auto expected = byte_size(shape, elem_bytes(*dtype));
    if (!expected || *expected != end - begin) {
      throw ModelFileError(where + ": shape " + shape_text(shape) + " of " +
                           dt->get<std::string>() + " needs " +
                           (expected ? std::to_string(*expected) : std::string("too many")) +
                           " bytes but data_offsets span " + std::to_string(end - begin));
    }
    // The data is read in place as floats: it must sit on its element size (the writers pad the
    // header to 8 bytes for this), or the kernels would read misaligned values.
    if (end > begin && (data_offset_ + begin) % elem_bytes(*dtype) != 0)
      throw ModelFileError(where + ": data at byte " + std::to_string(data_offset_ + begin) +
                           " is not aligned to its " + std::to_string(elem_bytes(*dtype)) +
                           "-byte elements");
    TensorRef t;
    t.name = name;
    t.dtype = *dtype;
    t.ne.assign(shape.rbegin(), shape.rend());
    if (t.ne.empty()) t.ne.push_back(1);  // ggml has no rank-0 tensors
    t.data = base_ + data_offset_ + begin;
    t.nbytes = static_cast<size_t>(end - begin);
    spans.push_back({begin, end, tensors_.size()});
    tensors_.push_back(std::move(t));
  }

  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Compare against the furthest-reaching earlier tensor, so an empty tensor in between does not
  // hide an overlap.
  size_t reach = 0;
  for (size_t i = 1; i < spans.size(); ++i) {
    const Span& prev = spans[reach];
    const Span& cur = spans[i];
    if (cur.begin < prev.end && cur.end > cur.begin) {
      throw ModelFileError(
          path_ + ": tensors `" + tensors_[prev.tensor].name + "` [" + std::to_string(prev.begin) +
          ", " + std::to_string(prev.end) + ") and `" + tensors_[cur.tensor].name + "` [" +
          std::to_string(cur.begin) + ", " + std::to_string(cur.end) + ") overlap");
    }
    if (cur.end > prev.end) reach = i;
  }
  std::vector<TensorRef> ordered;
  ordered.reserve(spans.size());
  for (const Span& s : spans) ordered.push_back(std::move(tensors_[s.tensor]));
  tensors_ = std::move(ordered);
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

void SafetensorsWriter::set_metadata(const std::string& key, std::string value) {
  metadata_[key] = std::move(value);
}

void SafetensorsWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                   const void* data, size_t nbytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  add_tensor(name, dtype, std::move(shape), std::vector<uint8_t>(p, p + nbytes));
}

void SafetensorsWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                   std::vector<uint8_t>&& bytes) {
  safetensors_dtype_name(dtype);  // rejects types safetensors cannot hold here
  auto expected = byte_size(shape, elem_bytes(dtype));
  if (!expected || *expected != bytes.size()) {
    throw EngineError("safetensors tensor `" + name + "`: shape " + shape_text(shape) +
                      " does not match " + std::to_string(bytes.size()) + " bytes");
  }
  if (name == "__metadata__")
    throw EngineError("safetensors tensor name `__metadata__` is reserved");
  for (const auto& t : tensors_)
    if (t.name == name) throw EngineError("safetensors tensor `" + name + "` added twice");
  tensors_.push_back({name, dtype, std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::write(const std::string& path) const {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  // Data in order of element size, widest first (then as added), as Hugging Face's writer lays it
  // out: every tensor then starts on its element size, which the reader requires.
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return elem_bytes(tensors_[a].dtype) > elem_bytes(tensors_[b].dtype);
  });
  uint64_t offset = 0;
  for (const size_t i : order) {
    const auto& t = tensors_[i];
    header[t.name] = {{"dtype", std::string(safetensors_dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ModelFileError(path + ": cannot create: " + std::strerror(errno));
  uint8_t len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const size_t i : order)
    out.write(reinterpret_cast<const char*>(tensors_[i].bytes.data()),
              static_cast<std::streamsize>(tensors_[i].bytes.size()));
  out.close();
  if (!out) throw ModelFileError(path + ": write failed: " + std::strerror(errno));
}

}  // namespace rawflow
