#include "model/formats/gguf.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "model/error.h"

namespace rawflow {

static_assert(std::endian::native == std::endian::little,
              "GGUF v3 files are little-endian; rawflow reads them with plain loads");

namespace {

constexpr uint32_t kGgufVersion = 3;
constexpr size_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
// llama.cpp stores tensor names in a fixed 64-byte buffer including the terminating NUL.
constexpr size_t kMaxTensorNameBytes = 63;
constexpr std::string_view kAlignmentKey = "general.alignment";
// Smallest encodings, used to reject counts the file cannot possibly hold before allocating:
// a KV is key length (8) + type (4) + one value byte; a tensor info is name length (8) + n_dims (4)
// + one dimension (8) + type (4) + offset (8).
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

bool is_valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

// Bytes of one scalar on disk; 0 for STRING and ARRAY, whose size depends on their contents.
size_t scalar_bytes(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 0;
  }
  return 0;
}

bool is_integer_type(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::UINT16:
    case GgufType::INT16:
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::UINT64:
    case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

// "uint32", "array[string]": how a value's type is shown in error messages.
std::string describe_type(const GgufValue& v) {
  if (v.type != GgufType::ARRAY) return std::string(gguf_type_name(v.type));
  return "array[" + std::string(gguf_type_name(v.array_type)) + "]";
}

// Names of ggml types rawflow does not run, so an error can say what the file holds.
std::string ggml_type_label(uint32_t id) {
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {3, "q4_1"},   {6, "q5_0"},    {7, "q5_1"},     {9, "q8_1"},    {10, "q2_K"},
      {11, "q3_K"},  {15, "q8_K"},   {16, "iq2_xxs"}, {17, "iq2_xs"}, {18, "iq3_xxs"},
      {19, "iq1_s"}, {20, "iq4_nl"}, {21, "iq3_s"},   {22, "iq2_s"},  {23, "iq4_xs"},
      {24, "i8"},    {25, "i16"},    {26, "i32"},     {27, "i64"},    {28, "f64"},
      {29, "iq1_m"}, {34, "tq1_0"},  {35, "tq2_0"},   {39, "mxfp4"},
  };
  for (const auto& [k, name] : kNames)
    if (k == id) return std::to_string(id) + " (" + std::string(name) + ")";
  return std::to_string(id) + " (unknown)";
}

size_t align_up(size_t x, size_t alignment) { return (x + alignment - 1) / alignment * alignment; }

bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

// Bounds-checked little-endian reads over the mapping. `context` names the part of the file being
// parsed ("metadata key #3 (`general.name`)") so a truncation error says where it happened.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* base, size_t size)
      : path_(path), base_(base), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // `index` >= 0 names the element of an array being read; messages are built only on failure.
  std::string read_string(const char* what, int64_t index = -1) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      std::string w = what;
      if (index >= 0) w += " #" + std::to_string(index);
      truncated(w + " of " + std::to_string(len) + " bytes", remaining());
    }
    std::string s(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  // Throws "<path>: truncated in <context> at byte <pos>: <what> ..." unless `n` bytes remain.
  void need(uint64_t n, const char* what) const {
    if (n > remaining()) truncated(what, remaining());
  }

  [[noreturn]] void truncated(const std::string& what, size_t left) const {
    throw ModelFileError(path_ + ": truncated in " + context_ + " at byte " + std::to_string(pos_) +
                         ": " + what + " does not fit in the " + std::to_string(left) +
                         " bytes left (file size " + std::to_string(size_) + ")");
  }

  [[noreturn]] void fail(const std::string& msg) const {
    throw ModelFileError(path_ + ": " + msg + " (in " + context_ + " at byte " +
                         std::to_string(pos_) + ")");
  }

 private:
  const std::string& path_;
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
  std::string context_ = "header";
};

// Reads one integer or bool of type `t` and widens it to int64.
int64_t read_integer(Cursor& c, GgufType t, const char* what) {
  switch (t) {
    case GgufType::UINT8:
      return c.read<uint8_t>(what);
    case GgufType::INT8:
      return c.read<int8_t>(what);
    case GgufType::UINT16:
      return c.read<uint16_t>(what);
    case GgufType::INT16:
      return c.read<int16_t>(what);
    case GgufType::UINT32:
      return c.read<uint32_t>(what);
    case GgufType::INT32:
      return c.read<int32_t>(what);
    case GgufType::INT64:
      return c.read<int64_t>(what);
    case GgufType::BOOL:
      return c.read<uint8_t>(what) != 0 ? 1 : 0;
    case GgufType::UINT64: {
      const uint64_t v = c.read<uint64_t>(what);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        c.fail(std::string(what) + " is uint64 " + std::to_string(v) +
               ", above the supported maximum 2^63-1");
      return static_cast<int64_t>(v);
    }
    default:
      return 0;
  }
}

double read_floating(Cursor& c, GgufType t, const char* what) {
  if (t == GgufType::FLOAT32) return c.read<float>(what);
  return c.read<double>(what);
}

GgufType read_type_id(Cursor& c, const std::string& key, const char* what) {
  const uint32_t id = c.read<uint32_t>(what);
  if (!is_valid_type(id))
    c.fail("metadata key `" + key + "` has unknown " + what + " id " + std::to_string(id));
  return static_cast<GgufType>(id);
}

void read_array(Cursor& c, const std::string& key, GgufValue& v) {
  v.array_type = read_type_id(c, key, "array element type");
  if (v.array_type == GgufType::ARRAY)
    c.fail("metadata key `" + key +
           "` is a nested array (array of arrays), which GGUF does not allow");
  const uint64_t n = c.read<uint64_t>("array length");
  // Check the count against the bytes left before reserving, so a corrupt count cannot allocate.
  const uint64_t min_elem_bytes = v.array_type == GgufType::STRING ? 8 : scalar_bytes(v.array_type);
  if (n > c.remaining() / min_elem_bytes)
    c.truncated("array of " + std::to_string(n) + " " + std::string(gguf_type_name(v.array_type)) +
                    " elements",
                c.remaining());
  const size_t count = static_cast<size_t>(n);
  if (v.array_type == GgufType::STRING) {
    v.strings.reserve(count);
    for (size_t j = 0; j < count; ++j)
      v.strings.push_back(c.read_string("string element", static_cast<int64_t>(j)));
  } else if (is_float_type(v.array_type)) {
    v.floats.reserve(count);
    for (size_t j = 0; j < count; ++j)
      v.floats.push_back(read_floating(c, v.array_type, "array element"));
  } else {
    v.ints.reserve(count);
    for (size_t j = 0; j < count; ++j)
      v.ints.push_back(read_integer(c, v.array_type, "array element"));
  }
}

GgufValue read_value(Cursor& c, const std::string& key) {
  GgufValue v;
  v.type = read_type_id(c, key, "value type");
  if (v.type == GgufType::ARRAY) {
    read_array(c, key, v);
  } else if (v.type == GgufType::STRING) {
    v.s = c.read_string("string value");
  } else if (is_float_type(v.type)) {
    v.f = read_floating(c, v.type, "value");
  } else {
    v.i = read_integer(c, v.type, "value");
  }
  return v;
}

std::string shape_string(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// ---- writer helpers ----

template <typename T>
void put(std::vector<uint8_t>& buf, T v) {
  const size_t at = buf.size();
  buf.resize(at + sizeof(T));
  std::memcpy(buf.data() + at, &v, sizeof(T));
}

void put_string(std::vector<uint8_t>& buf, const std::string& s) {
  put<uint64_t>(buf, s.size());
  buf.insert(buf.end(), s.begin(), s.end());
}

void put_integer(std::vector<uint8_t>& buf, GgufType t, int64_t v) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::BOOL:
      put<uint8_t>(buf, static_cast<uint8_t>(v));
      break;
    case GgufType::INT8:
      put<int8_t>(buf, static_cast<int8_t>(v));
      break;
    case GgufType::UINT16:
      put<uint16_t>(buf, static_cast<uint16_t>(v));
      break;
    case GgufType::INT16:
      put<int16_t>(buf, static_cast<int16_t>(v));
      break;
    case GgufType::UINT32:
      put<uint32_t>(buf, static_cast<uint32_t>(v));
      break;
    case GgufType::INT32:
      put<int32_t>(buf, static_cast<int32_t>(v));
      break;
    case GgufType::UINT64:
      put<uint64_t>(buf, static_cast<uint64_t>(v));
      break;
    case GgufType::INT64:
      put<int64_t>(buf, v);
      break;
    default:
      break;
  }
}

void put_floating(std::vector<uint8_t>& buf, GgufType t, double v) {
  if (t == GgufType::FLOAT32)
    put<float>(buf, static_cast<float>(v));
  else
    put<double>(buf, v);
}

// Range of an integer GGUF type as held in GgufValue::i (UINT64 is capped at INT64_MAX there).
std::pair<int64_t, int64_t> integer_range(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
      return {0, 255};
    case GgufType::INT8:
      return {-128, 127};
    case GgufType::UINT16:
      return {0, 65535};
    case GgufType::INT16:
      return {-32768, 32767};
    case GgufType::UINT32:
      return {0, 4294967295LL};
    case GgufType::INT32:
      return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    case GgufType::UINT64:
      return {0, std::numeric_limits<int64_t>::max()};
    case GgufType::BOOL:
      return {0, 1};
    default:
      return {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
  }
}

void check_integer_range(const std::string& key, GgufType t, int64_t v) {
  const auto [lo, hi] = integer_range(t);
  if (v < lo || v > hi)
    throw EngineError("GgufWriter: value " + std::to_string(v) + " of key `" + key +
                      "` does not fit in " + std::string(gguf_type_name(t)));
}

void validate_value(const std::string& key, const GgufValue& v) {
  if (key.empty()) throw EngineError("GgufWriter: empty metadata key");
  if (!is_valid_type(static_cast<uint32_t>(v.type)))
    throw EngineError("GgufWriter: key `" + key + "` has an invalid value type");
  if (v.type == GgufType::ARRAY) {
    if (v.array_type == GgufType::ARRAY || !is_valid_type(static_cast<uint32_t>(v.array_type)))
      throw EngineError("GgufWriter: key `" + key + "` has an invalid array element type");
    if (is_integer_type(v.array_type) || v.array_type == GgufType::BOOL)
      for (int64_t x : v.ints) check_integer_range(key, v.array_type, x);
  } else if (is_integer_type(v.type) || v.type == GgufType::BOOL) {
    check_integer_range(key, v.type, v.i);
  }
}

void put_value(std::vector<uint8_t>& buf, const GgufValue& v) {
  put<uint32_t>(buf, static_cast<uint32_t>(v.type));
  if (v.type == GgufType::STRING) {
    put_string(buf, v.s);
  } else if (is_float_type(v.type)) {
    put_floating(buf, v.type, v.f);
  } else if (v.type != GgufType::ARRAY) {
    put_integer(buf, v.type, v.i);
  } else {
    put<uint32_t>(buf, static_cast<uint32_t>(v.array_type));
    put<uint64_t>(buf, v.array_size());
    if (v.array_type == GgufType::STRING) {
      for (const auto& s : v.strings) put_string(buf, s);
    } else if (is_float_type(v.array_type)) {
      for (double x : v.floats) put_floating(buf, v.array_type, x);
    } else {
      for (int64_t x : v.ints) put_integer(buf, v.array_type, x);
    }
  }
}

// Writes to a temporary sibling and renames it into place, so a reader never sees a half file.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path) : path_(path), tmp_(path + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) fail("cannot create");
  }
  ~AtomicFile() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, f_) != n) fail("write failed");
    written_ += n;
  }
  void pad_to(size_t alignment) {
    static const uint8_t kZeros[256] = {};
    while (written_ % alignment != 0)
      write(kZeros, std::min(sizeof(kZeros), alignment - written_ % alignment));
  }
  void commit() {
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) {
      std::remove(tmp_.c_str());
      fail("write failed");
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp_.c_str());
      errno = err;
      fail("cannot rename " + tmp_ + " into place");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw ModelFileError(path_ + ": " + what + ": " + std::strerror(errno));
  }
  std::string path_;
  std::string tmp_;
  std::FILE* f_ = nullptr;
  size_t written_ = 0;
};

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
      return "uint8";
    case GgufType::INT8:
      return "int8";
    case GgufType::UINT16:
      return "uint16";
    case GgufType::INT16:
      return "int16";
    case GgufType::UINT32:
      return "uint32";
    case GgufType::INT32:
      return "int32";
    case GgufType::FLOAT32:
      return "float32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::UINT64:
      return "uint64";
    case GgufType::INT64:
      return "int64";
    case GgufType::FLOAT64:
      return "float64";
  }
  return "invalid";
}

bool GgufValue::is_integer() const { return is_integer_type(type); }
bool GgufValue::is_float() const { return is_float_type(type); }

size_t GgufValue::array_size() const {
  if (type != GgufType::ARRAY) return 0;
  if (array_type == GgufType::STRING) return strings.size();
  if (is_float_type(array_type)) return floats.size();
  return ints.size();
}

int64_t GgufTensorInfo::nelements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reader

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;

  f->map_ = MappedFile::open(path);
  f->size_ = f->map_.size();
  if (f->size_ == 0) throw ModelFileError(path + ": file is empty, not a GGUF file");
  f->base_ = f->map_.data();

  Cursor c(f->path_, f->base_, f->size_);

  // Header.
  c.need(4, "magic");
  if (std::memcmp(f->base_, "GGUF", 4) != 0) {
    char hex[64];
    std::snprintf(hex, sizeof(hex), "%02x %02x %02x %02x", f->base_[0], f->base_[1], f->base_[2],
                  f->base_[3]);
    throw ModelFileError(path + ": not a GGUF file (magic bytes " + hex +
                         ", expected 47 47 55 46 \"GGUF\")");
  }
  c.read<uint32_t>("magic");
  f->version_ = c.read<uint32_t>("version");
  if (f->version_ != 2 && f->version_ != 3) {
    std::string msg = path + ": unsupported GGUF version " + std::to_string(f->version_) +
                      " (rawflow reads versions 2 and 3)";
    if (f->version_ == 1) msg += "; version 1 is obsolete, convert the model again";
    if (const uint32_t sw = __builtin_bswap32(f->version_); sw == 2 || sw == 3)
      msg += "; this looks like a big-endian GGUF, which is not supported";
    throw ModelFileError(msg);
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    c.truncated("tensor count " + std::to_string(n_tensors) + " (at least " +
                    std::to_string(kMinTensorInfoBytes) + " bytes each)",
                c.remaining());
  if (n_kv > (c.remaining() - n_tensors * kMinTensorInfoBytes) / kMinKvBytes)
    c.truncated("metadata count " + std::to_string(n_kv) + " (at least " +
                    std::to_string(kMinKvBytes) + " bytes each) with " + std::to_string(n_tensors) +
                    " tensor infos",
                c.remaining());

  // Metadata.
  f->kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string idx = "metadata key #" + std::to_string(i);
    c.set_context(idx);
    std::string key = c.read_string("key");
    if (key.empty()) c.fail(idx + " has an empty name");
    c.set_context(idx + " (`" + key + "`)");
    if (f->kv_index_.count(key)) c.fail("duplicate metadata key `" + key + "`");
    GgufValue v = read_value(c, key);
    f->kv_index_.emplace(key, f->kv_.size());
    f->kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = f->find(kAlignmentKey)) {
    if (!a->is_integer())
      throw ModelFileError(path + ": metadata key `general.alignment` has type " +
                           describe_type(*a) + ", expected uint32");
    // The format asks for a multiple of 8, and the kernels read f32/f16 data in place: a smaller
    // alignment would hand them misaligned floats (found by fuzz/, docs/reliability.md).
    if (a->i < 8 || a->i > (int64_t{1} << 30) || !is_power_of_two(static_cast<uint64_t>(a->i)))
      throw ModelFileError(path + ": general.alignment = " + std::to_string(a->i) +
                           " is not a power of two in [8, 2^30]");
    f->alignment_ = static_cast<size_t>(a->i);
  } else {
    f->alignment_ = kDefaultAlignment;
  }

  // Tensor infos.
  f->tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string idx = "tensor info #" + std::to_string(i);
    c.set_context(idx);
    GgufTensorInfo t;
    t.name = c.read_string("tensor name");
    c.set_context(idx + " (`" + t.name + "`)");
    const std::string tn = "tensor `" + t.name + "`";
    if (t.name.empty()) c.fail(idx + " has an empty name");
    if (f->tensor_index_.count(t.name)) c.fail("duplicate tensor name `" + t.name + "`");
    const uint32_t n_dims = c.read<uint32_t>("n_dims");
    if (n_dims < 1 || n_dims > kMaxDims)
      c.fail(tn + " has n_dims = " + std::to_string(n_dims) + ", expected 1 to 4");
    for (uint32_t d = 0; d < n_dims; ++d) {
      static constexpr const char* kNe[kMaxDims] = {"ne[0]", "ne[1]", "ne[2]", "ne[3]"};
      const uint64_t ne = c.read<uint64_t>(kNe[d]);
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        c.fail(tn + " has ne[" + std::to_string(d) + "] = " + std::to_string(ne) +
               " (negative as int64)");
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t type_id = c.read<uint32_t>("ggml type");
    const auto dtype = dtype_from_ggml(type_id);
    if (!dtype)
      c.fail(tn + " has ggml type " + ggml_type_label(type_id) +
             ", which rawflow does not support (f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K)");
    t.dtype = *dtype;
    t.offset = c.read<uint64_t>("data offset");

    const auto& tr = dtype_traits(t.dtype);
    if (t.ne[0] % tr.block_elems != 0)
      c.fail(tn + " of type " + std::string(tr.name) + " has ne[0] = " + std::to_string(t.ne[0]) +
             ", not a multiple of the block size " + std::to_string(tr.block_elems));
    // Byte size with overflow checks: a corrupt shape must fail here, not wrap around.
    uint64_t rows = 1;
    for (size_t d = 1; d < t.ne.size(); ++d)
      if (__builtin_mul_overflow(rows, static_cast<uint64_t>(t.ne[d]), &rows))
        c.fail(tn + " shape " + shape_string(t.ne) + " overflows");
    uint64_t nbytes = 0;
    const uint64_t row_bytes = static_cast<uint64_t>(t.ne[0] / tr.block_elems) * tr.block_bytes;
    if (__builtin_mul_overflow(row_bytes, rows, &nbytes) || nbytes > f->size_)
      c.fail(tn + " shape " + shape_string(t.ne) + " (" + std::string(tr.name) +
             ") is larger than the file (size " + std::to_string(f->size_) + ")");
    t.nbytes = static_cast<size_t>(nbytes);
    f->tensor_index_.emplace(t.name, f->tensors_.size());
    f->tensors_.push_back(std::move(t));
  }

  // Data section and tensor placement.
  f->data_offset_ = align_up(c.pos(), f->alignment_);
  for (const auto& t : f->tensors_) {
    const std::string tn = path + ": tensor `" + t.name + "`";
    if (t.offset % f->alignment_ != 0)
      throw ModelFileError(tn + " data offset " + std::to_string(t.offset) +
                           " is not a multiple of the alignment " + std::to_string(f->alignment_));
    if (t.offset > f->size_ || f->data_offset_ + t.offset + t.nbytes > f->size_)
      throw ModelFileError(tn + " data [" + std::to_string(f->data_offset_ + t.offset) + ", " +
                           std::to_string(f->data_offset_ + t.offset + t.nbytes) +
                           ") past end of file (size " + std::to_string(f->size_) + ")");
  }
  return f;
}

GgufFile::~GgufFile() = default;

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

const GgufValue& require_key(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (!v) throw ModelFileError(f.path() + ": metadata key `" + std::string(key) + "` not found");
  return *v;
}

[[noreturn]] void wrong_type(const GgufFile& f, std::string_view key, const GgufValue& v,
                             const char* expected) {
  throw ModelFileError(f.path() + ": metadata key `" + std::string(key) + "` has type " +
                       describe_type(v) + ", expected " + expected);
}

bool is_int_array(const GgufValue& v) {
  return v.type == GgufType::ARRAY &&
         (is_integer_type(v.array_type) || v.array_type == GgufType::BOOL);
}

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = require_key(*this, key);
  if (v.type != GgufType::STRING) wrong_type(*this, key, v, "string");
  return v.s;
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue& v = require_key(*this, key);
  if (!v.is_integer()) wrong_type(*this, key, v, "an integer");
  return v.i;
}

double GgufFile::get_float(std::string_view key) const {
  const GgufValue& v = require_key(*this, key);
  if (v.is_float()) return v.f;
  if (v.is_integer()) return static_cast<double>(v.i);
  wrong_type(*this, key, v, "a float");
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = require_key(*this, key);
  if (v.type != GgufType::BOOL) wrong_type(*this, key, v, "bool");
  return v.i != 0;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue& v = require_key(*this, key);
  if (!is_int_array(v)) wrong_type(*this, key, v, "an integer array");
  return v.ints;
}

std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue& v = require_key(*this, key);
  if (v.type == GgufType::ARRAY && is_float_type(v.array_type)) return v.floats;
  if (is_int_array(v) && v.array_type != GgufType::BOOL)
    return std::vector<double>(v.ints.begin(), v.ints.end());
  wrong_type(*this, key, v, "a float array");
}

const std::vector<std::string>& GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = require_key(*this, key);
  if (v.type != GgufType::ARRAY || v.array_type != GgufType::STRING)
    wrong_type(*this, key, v, "array[string]");
  return v.strings;
}

std::string GgufFile::get_string_or(std::string_view key, std::string def) const {
  return has(key) ? get_string(key) : def;
}
int64_t GgufFile::get_int_or(std::string_view key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}
double GgufFile::get_float_or(std::string_view key, double def) const {
  return has(key) ? get_float(key) : def;
}
bool GgufFile::get_bool_or(std::string_view key, bool def) const {
  return has(key) ? get_bool(key) : def;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) throw ModelFileError(path_ + ": tensor `" + std::string(name) + "` not found");
  return *t;
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& t) const {
  return base_ + data_offset_ + t.offset;
}

TensorRef GgufFile::ref(const GgufTensorInfo& t) const {
  TensorRef r;
  r.name = t.name;
  r.dtype = t.dtype;
  r.ne = t.ne;
  r.data = tensor_data(t);
  r.nbytes = t.nbytes;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Writer

void GgufWriter::set_value(const std::string& key, const GgufValue& v) {
  validate_value(key, v);
  // Like llama.cpp's gguf_set_*: setting a key again removes it and appends the new value, so a
  // file built the same way is byte-identical.
  std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
  kv_.emplace_back(key, v);
}

void GgufWriter::set_string(const std::string& key, std::string v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.s = std::move(v);
  set_value(key, g);
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
  GgufValue g;
  g.type = GgufType::UINT32;
  g.i = v;
  set_value(key, g);
}

void GgufWriter::set_i32(const std::string& key, int32_t v) {
  GgufValue g;
  g.type = GgufType::INT32;
  g.i = v;
  set_value(key, g);
}

void GgufWriter::set_u64(const std::string& key, uint64_t v) {
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw EngineError("GgufWriter: value of key `" + key + "` exceeds 2^63-1");
  GgufValue g;
  g.type = GgufType::UINT64;
  g.i = static_cast<int64_t>(v);
  set_value(key, g);
}

void GgufWriter::set_f32(const std::string& key, float v) {
  GgufValue g;
  g.type = GgufType::FLOAT32;
  g.f = v;
  set_value(key, g);
}

void GgufWriter::set_bool(const std::string& key, bool v) {
  GgufValue g;
  g.type = GgufType::BOOL;
  g.i = v ? 1 : 0;
  set_value(key, g);
}

void GgufWriter::set_array_i32(const std::string& key, const std::vector<int32_t>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.array_type = GgufType::INT32;
  g.ints.assign(v.begin(), v.end());
  set_value(key, g);
}

void GgufWriter::set_array_u32(const std::string& key, const std::vector<uint32_t>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.array_type = GgufType::UINT32;
  g.ints.assign(v.begin(), v.end());
  set_value(key, g);
}

void GgufWriter::set_array_f32(const std::string& key, const std::vector<float>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.array_type = GgufType::FLOAT32;
  g.floats.assign(v.begin(), v.end());
  set_value(key, g);
}

void GgufWriter::set_array_bool(const std::string& key, const std::vector<bool>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.array_type = GgufType::BOOL;
  g.ints.assign(v.begin(), v.end());
  set_value(key, g);
}

void GgufWriter::set_array_string(const std::string& key, const std::vector<std::string>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.array_type = GgufType::STRING;
  g.strings = v;
  set_value(key, g);
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> ne,
                            const void* data, size_t nbytes) {
  const std::string tn = "GgufWriter: tensor `" + name + "`";
  if (name.empty() || name.size() > kMaxTensorNameBytes)
    throw EngineError(tn + ": name must be 1 to 63 bytes (llama.cpp's limit)");
  for (const auto& p : tensors_)
    if (p.name == name) throw EngineError(tn + " added twice");
  if (ne.empty() || ne.size() > kMaxDims)
    throw EngineError(tn + ": " + std::to_string(ne.size()) + " dimensions, expected 1 to 4");
  for (int64_t d : ne)
    if (d < 1) throw EngineError(tn + ": dimension below 1 in " + shape_string(ne));
  // llama.cpp writes n_dims = ggml_n_dims(), which drops trailing dimensions of 1; doing the same
  // keeps our files byte-identical to its output.
  while (ne.size() > 1 && ne.back() == 1) ne.pop_back();
  const auto& tr = dtype_traits(dtype);
  if (ne[0] % tr.block_elems != 0)
    throw EngineError(tn + ": ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
                      std::string(tr.name) + " block size " + std::to_string(tr.block_elems));
  size_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= static_cast<size_t>(ne[d]);
  const size_t expected = dtype_row_bytes(dtype, ne[0]) * rows;
  if (nbytes != expected)
    throw EngineError(tn + ": got " + std::to_string(nbytes) + " bytes, shape " + shape_string(ne) +
                      " of " + std::string(tr.name) + " needs " + std::to_string(expected));
  Pending p{name, dtype, std::move(ne), {}};
  const auto* bytes = static_cast<const uint8_t*>(data);
  p.bytes.assign(bytes, bytes + nbytes);
  tensors_.push_back(std::move(p));
}

void GgufWriter::write(const std::string& path) const {
  if (!is_power_of_two(alignment_))
    throw EngineError("GgufWriter: alignment " + std::to_string(alignment_) +
                      " is not a power of two");
  // Readers learn a non-default alignment only from general.alignment (which llama.cpp requires to
  // be uint32), so make sure the file carries a matching one.
  auto kv = kv_;
  bool has_alignment_key = false;
  for (const auto& [k, v] : kv) {
    if (k != kAlignmentKey) continue;
    has_alignment_key = true;
    if (v.type != GgufType::UINT32 || static_cast<size_t>(v.i) != alignment_)
      throw EngineError("GgufWriter: general.alignment must be uint32 " +
                        std::to_string(alignment_) + " to match the writer's alignment");
  }
  if (!has_alignment_key && alignment_ != kDefaultAlignment) {
    GgufValue a;
    a.type = GgufType::UINT32;
    a.i = static_cast<int64_t>(alignment_);
    kv.emplace_back(std::string(kAlignmentKey), a);
  }

  std::vector<uint8_t> head;
  head.insert(head.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(head, kGgufVersion);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv.size());
  for (const auto& [k, v] : kv) {
    put_string(head, k);
    put_value(head, v);
  }
  // llama.cpp requires each tensor to start exactly where the previous one's padded data ends.
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(head, static_cast<uint64_t>(d));
    put<uint32_t>(head, static_cast<uint32_t>(t.dtype));
    put<uint64_t>(head, offset);
    offset += align_up(t.bytes.size(), alignment_);
  }

  AtomicFile out(path);
  out.write(head.data(), head.size());
  out.pad_to(alignment_);
  for (const auto& t : tensors_) {
    out.write(t.bytes.data(), t.bytes.size());
    out.pad_to(alignment_);
  }
  out.commit();
}

}  // namespace rawflow
