#define BOOST_TEST_MODULE test_gguf
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/formats/gguf.h"

namespace fs = std::filesystem;
using namespace rawflow;

namespace {

fs::path work_dir() {
  const char* env = std::getenv("RAWFLOW_TEST_WORK");
  fs::path dir = fs::path(env && *env ? env : "/tmp") / ("test_gguf." + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir;
}

// Removes the scratch directory once all cases have run.
struct CleanWorkDir {
  ~CleanWorkDir() {
    std::error_code ec;
    fs::remove_all(work_dir(), ec);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(CleanWorkDir);

std::string tmp_path(const std::string& name) { return (work_dir() / name).string(); }

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  BOOST_REQUIRE(out.good());
}

template <typename T>
void patch(std::vector<uint8_t>& b, size_t pos, T v) {
  BOOST_REQUIRE(pos + sizeof(T) <= b.size());
  std::memcpy(b.data() + pos, &v, sizeof(T));
}

template <typename T>
T peek(const std::vector<uint8_t>& b, size_t pos) {
  T v;
  std::memcpy(&v, b.data() + pos, sizeof(T));
  return v;
}

// Position of the first occurrence of `s` (a key or tensor name: the characters after its length).
size_t find_str(const std::vector<uint8_t>& b, const std::string& s) {
  auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
  BOOST_REQUIRE(it != b.end());
  return static_cast<size_t>(it - b.begin());
}

// Field positions of a tensor info, from the position of its name characters.
struct InfoPos {
  size_t n_dims, ne0, type, offset;
};
InfoPos info_pos(const std::vector<uint8_t>& b, const std::string& name) {
  const size_t p = find_str(b, name) + name.size();
  const uint32_t n_dims = peek<uint32_t>(b, p);
  return {p, p + 4, p + 4 + 8 * n_dims, p + 4 + 8 * n_dims + 4};
}

// Predicate for BOOST_CHECK_EXCEPTION: message starts with the file path and contains every part.
std::function<bool(const ModelFileError&)> msg_has(const std::string& path,
                                                   std::vector<std::string> parts) {
  return [path, parts](const ModelFileError& e) {
    const std::string m = e.what();
    bool ok = m.rfind(path + ": ", 0) == 0;
    for (const auto& p : parts) ok = ok && m.find(p) != std::string::npos;
    if (!ok) BOOST_TEST_MESSAGE("unexpected message: " << m);
    return ok;
  };
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(rng());
  return v;
}

GgufValue scalar(GgufType t, int64_t i) {
  GgufValue v;
  v.type = t;
  v.i = i;
  return v;
}

GgufValue array_of(GgufType t) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.array_type = t;
  return v;
}

// A small model-like file: a few keys (one a string array), two tensors of 2 rows each.
struct Sample {
  std::string path;
  std::vector<uint8_t> q_bytes, k_bytes;
};

Sample write_sample(const std::string& name) {
  Sample s{tmp_path(name), random_bytes(4 * 8 * 2, 1), random_bytes(34 * 2 * 2, 2)};
  GgufWriter w;
  w.set_string("general.architecture", "gemma4");
  w.set_u32("gemma4.block_count", 1);
  std::vector<std::string> tokens;
  for (int i = 0; i < 100; ++i) tokens.push_back("tok" + std::to_string(i));
  w.set_array_string("tokenizer.ggml.tokens", tokens);
  w.set_array_u32("k.arr", {1, 2, 3});
  w.set_f32("k.float", 0.5f);
  w.add_tensor("blk.0.attn_q.weight", DType::F32, {8, 2}, s.q_bytes.data(), s.q_bytes.size());
  w.add_tensor("blk.0.attn_k.weight", DType::Q8_0, {64, 2}, s.k_bytes.data(), s.k_bytes.size());
  w.write(s.path);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(metadata_round_trip_every_type) {
  const std::string path = tmp_path("meta.gguf");
  // Each scalar type at an extreme of its range, so a wrong width or signedness shows.
  std::vector<std::pair<std::string, GgufValue>> want = {
      {"s.u8", scalar(GgufType::UINT8, 255)},
      {"s.i8", scalar(GgufType::INT8, -128)},
      {"s.u16", scalar(GgufType::UINT16, 65535)},
      {"s.i16", scalar(GgufType::INT16, -32768)},
      {"s.u32", scalar(GgufType::UINT32, 4294967295LL)},
      {"s.i32", scalar(GgufType::INT32, std::numeric_limits<int32_t>::min())},
      {"s.u64", scalar(GgufType::UINT64, std::numeric_limits<int64_t>::max())},
      {"s.i64", scalar(GgufType::INT64, std::numeric_limits<int64_t>::min())},
      {"s.bool", scalar(GgufType::BOOL, 1)},
  };
  GgufValue f32;
  f32.type = GgufType::FLOAT32;
  f32.f = static_cast<double>(0.1f);  // exactly representable after the float round trip
  want.emplace_back("s.f32", f32);
  GgufValue f64;
  f64.type = GgufType::FLOAT64;
  f64.f = -1.2345678901234567e300;
  want.emplace_back("s.f64", f64);
  GgufValue str;
  str.type = GgufType::STRING;
  static const char kRaw[] = "UTF-8 \xe2\x96\x81piece and a NUL \0 inside";
  str.s = std::string(kRaw, sizeof(kRaw) - 1);
  want.emplace_back("s.str", str);

  for (GgufType t :
       {GgufType::UINT8, GgufType::INT8, GgufType::UINT16, GgufType::INT16, GgufType::UINT32,
        GgufType::INT32, GgufType::UINT64, GgufType::INT64, GgufType::BOOL}) {
    GgufValue a = array_of(t);
    a.ints = t == GgufType::BOOL ? std::vector<int64_t>{1, 0, 1} : std::vector<int64_t>{0, 1, 100};
    if (t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64)
      a.ints.push_back(-7);
    want.emplace_back("a." + std::string(gguf_type_name(t)), a);
  }
  GgufValue af32 = array_of(GgufType::FLOAT32);
  af32.floats = {0.0, -1.5, static_cast<double>(3.0e38f),
                 static_cast<double>(1e-40f)};  // incl. a subnormal float
  want.emplace_back("a.f32", af32);
  GgufValue af64 = array_of(GgufType::FLOAT64);
  af64.floats = {1e-310, 2.5};
  want.emplace_back("a.f64", af64);
  GgufValue astr = array_of(GgufType::STRING);
  astr.strings = {"", "<bos>", "\xe2\x96\x81the", std::string(300, 'x')};
  want.emplace_back("a.str", astr);
  want.emplace_back("a.empty", array_of(GgufType::UINT32));

  GgufWriter w;
  for (const auto& [k, v] : want) w.set_value(k, v);
  // The typed setters, including one that replaces an earlier value.
  w.set_u32("t.u32", 1);
  w.set_i32("t.i32", -5);
  w.set_u32("t.u32", 7);
  w.set_u64("t.u64", 1ULL << 40);
  w.set_f32("t.f32", 2.75f);
  w.set_bool("t.bool", false);
  w.set_string("t.str", "hello");
  w.set_array_i32("t.ai32", {-1, 2});
  w.set_array_u32("t.au32", {3, 4});
  w.set_array_f32("t.af32", {0.25f});
  w.set_array_bool("t.abool", {true, false});
  w.set_array_string("t.astr", {"a", "b"});
  w.write(path);

  const auto f = GgufFile::open(path);
  BOOST_TEST(f->version() == 3u);
  BOOST_TEST(f->alignment() == 32u);
  BOOST_TEST(f->tensors().empty());
  const auto& kv = f->metadata();
  BOOST_REQUIRE_EQUAL(kv.size(), want.size() + 11);  // t.u32 was set twice
  for (size_t i = 0; i < want.size(); ++i) {
    BOOST_TEST_CONTEXT("key " << want[i].first) {
      const auto& [k, v] = kv[i];
      const auto& e = want[i].second;
      BOOST_TEST(k == want[i].first);
      BOOST_TEST(static_cast<uint32_t>(v.type) == static_cast<uint32_t>(e.type));
      BOOST_TEST(v.i == e.i);
      BOOST_TEST(v.f == e.f);  // exact: values were chosen representable in their width
      BOOST_TEST(v.s == e.s);
      if (e.type == GgufType::ARRAY) {
        BOOST_TEST(static_cast<uint32_t>(v.array_type) == static_cast<uint32_t>(e.array_type));
        BOOST_TEST(v.array_size() == e.array_size());
        BOOST_TEST(v.ints == e.ints);
        BOOST_TEST(v.floats == e.floats);
        BOOST_TEST(v.strings == e.strings);
      }
    }
  }
  // Setting a key again moves it to the end, as llama.cpp's gguf_set_* does.
  BOOST_TEST(kv[want.size()].first == "t.i32");
  BOOST_TEST(kv[want.size() + 1].first == "t.u32");
  BOOST_TEST(f->get_int("t.u32") == 7);
  BOOST_TEST(f->get_int("t.i32") == -5);
  BOOST_TEST(f->get_int("t.u64") == (int64_t{1} << 40));
  BOOST_TEST(f->get_int("s.i8") == -128);
  BOOST_TEST(f->get_float("t.f32") == 2.75);
  BOOST_TEST(f->get_float("s.u16") == 65535.0);  // integers are accepted where floats are asked
  BOOST_TEST(f->get_bool("t.bool") == false);
  BOOST_TEST(f->get_bool("s.bool") == true);
  BOOST_TEST(f->get_string("t.str") == "hello");
  BOOST_TEST(f->get_int_array("t.ai32") == std::vector<int64_t>({-1, 2}));
  BOOST_TEST(f->get_int_array("t.au32") == std::vector<int64_t>({3, 4}));
  BOOST_TEST(f->get_int_array("t.abool") == std::vector<int64_t>({1, 0}));
  BOOST_TEST(f->get_float_array("t.af32") == std::vector<double>({0.25}));
  BOOST_TEST(f->get_string_array("t.astr") == std::vector<std::string>({"a", "b"}));
  BOOST_TEST(f->get_int_or("absent", 42) == 42);
  BOOST_TEST(f->get_int_or("t.u32", 42) == 7);
  BOOST_TEST(f->get_float_or("absent", 1.5) == 1.5);
  BOOST_TEST(f->get_bool_or("absent", true) == true);
  BOOST_TEST(f->get_string_or("absent", "d") == "d");
  BOOST_TEST(f->has("s.str"));
  BOOST_TEST(!f->has("s.nope"));
}

BOOST_AUTO_TEST_CASE(tensor_round_trip_all_dtypes) {
  for (size_t alignment : {size_t{32}, size_t{64}}) {
    BOOST_TEST_CONTEXT("alignment " << alignment) {
      const std::string path = tmp_path("tensors" + std::to_string(alignment) + ".gguf");
      struct Case {
        DType dtype;
        std::vector<int64_t> ne;
        std::vector<int64_t> ne_read;  // trailing 1s dropped, as llama.cpp's writer does
      };
      // ne[0] = one or two blocks, with odd row counts so data sizes are not multiples of 32.
      const std::vector<Case> cases = {
          {DType::F32, {5, 3}, {5, 3}},        {DType::F16, {7, 3}, {7, 3}},
          {DType::BF16, {9, 1, 3}, {9, 1, 3}}, {DType::Q8_0, {64, 3}, {64, 3}},
          {DType::Q4_0, {32, 3, 1}, {32, 3}},  {DType::Q4_K, {256, 1}, {256}},
          {DType::Q5_K, {512, 3}, {512, 3}},   {DType::Q6_K, {256, 1, 1, 3}, {256, 1, 1, 3}},
      };
      GgufWriter w(alignment);
      w.set_string("general.name", "dtypes");
      std::vector<std::vector<uint8_t>> data;
      for (size_t i = 0; i < cases.size(); ++i) {
        size_t rows = 1;
        for (size_t d = 1; d < cases[i].ne.size(); ++d) rows *= cases[i].ne[d];
        data.push_back(
            random_bytes(dtype_row_bytes(cases[i].dtype, cases[i].ne[0]) * rows, 10 + i));
        w.add_tensor("t." + std::string(dtype_name(cases[i].dtype)), cases[i].dtype, cases[i].ne,
                     data.back().data(), data.back().size());
      }
      w.write(path);

      const auto f = GgufFile::open(path);
      BOOST_TEST(f->alignment() == alignment);
      if (alignment != 32) BOOST_TEST(f->get_int("general.alignment") == int64_t(alignment));
      BOOST_TEST(f->data_offset() % alignment == 0u);
      BOOST_REQUIRE_EQUAL(f->tensors().size(), cases.size());
      // llama.cpp's layout: tensors back to back in insertion order, each padded to the alignment,
      // and the file ends after the last tensor's padding.
      size_t expect_offset = 0;
      for (size_t i = 0; i < cases.size(); ++i) {
        const auto& t = f->tensors()[i];
        BOOST_TEST_CONTEXT("tensor " << t.name) {
          BOOST_TEST(t.name == "t." + std::string(dtype_name(cases[i].dtype)));
          BOOST_TEST(static_cast<uint32_t>(t.dtype) == static_cast<uint32_t>(cases[i].dtype));
          BOOST_TEST(t.ne == cases[i].ne_read);
          BOOST_TEST(t.nbytes == data[i].size());
          BOOST_TEST(t.offset == expect_offset);
          BOOST_TEST(std::memcmp(f->tensor_data(t), data[i].data(), data[i].size()) == 0);
          const TensorRef r = f->ref(f->tensor(t.name));
          BOOST_TEST(r.name == t.name);
          BOOST_TEST(static_cast<uint32_t>(r.dtype) == static_cast<uint32_t>(t.dtype));
          BOOST_TEST(r.ne == t.ne);
          BOOST_TEST(r.nbytes == t.nbytes);
          BOOST_TEST(r.data ==
                     static_cast<const void*>(f->map_base() + f->data_offset() + t.offset));
          BOOST_TEST(reinterpret_cast<uintptr_t>(r.data) % alignment == 0u);
        }
        expect_offset += (data[i].size() + alignment - 1) / alignment * alignment;
      }
      BOOST_TEST(f->file_size() == f->data_offset() + expect_offset);
      BOOST_TEST(f->find_tensor("absent") == nullptr);
      BOOST_CHECK_EXCEPTION(f->tensor("absent"), ModelFileError,
                            msg_has(path, {"tensor `absent` not found"}));
    }
  }
}

// The writer's bytes checked against the format description, independently of the reader.
BOOST_AUTO_TEST_CASE(writer_bytes_match_the_spec) {
  const std::string path = tmp_path("bytes.gguf");
  const float data[2] = {1.0f, -2.0f};
  GgufWriter w;
  w.set_u32("a", 7);
  w.add_tensor("t", DType::F32, {2}, data, sizeof(data));
  w.write(path);

  std::vector<uint8_t> e = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) e.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) e.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  u64(1);  // tensors
  u64(1);  // kv
  u64(1);
  e.push_back('a');
  u32(4);  // UINT32
  u32(7);
  u64(1);
  e.push_back('t');
  u32(1);  // n_dims
  u64(2);
  u32(0);  // GGML_TYPE_F32
  u64(0);  // offset
  while (e.size() % 32) e.push_back(0);
  u32(0x3f800000);  // 1.0f
  u32(0xc0000000);  // -2.0f
  while (e.size() % 32) e.push_back(0);
  BOOST_TEST(read_bytes(path) == e);
}

BOOST_AUTO_TEST_CASE(truncated_files) {
  const Sample s = write_sample("trunc_src.gguf");
  const auto full = read_bytes(s.path);
  const auto f = GgufFile::open(s.path);
  const auto& k = f->tensor("blk.0.attn_k.weight");
  const size_t needed = f->data_offset() + k.offset + k.nbytes;
  const std::string path = tmp_path("trunc.gguf");

  // Header: 10 bytes hold magic and version but not the tensor count.
  write_bytes(path, {full.begin(), full.begin() + 10});
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"truncated in header at byte 8", "tensor count"}));

  // In the middle of the token array (key #2), late enough that its element count still fits.
  const size_t in_tokens = find_str(full, "tok80");
  write_bytes(path, {full.begin(), full.begin() + in_tokens});
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"truncated in metadata key #2 (`tokenizer.ggml.tokens`) at byte " +
                         std::to_string(in_tokens),
                     "string element #80"}));

  // Inside the second tensor info, between its name and its shape.
  const InfoPos ip = info_pos(full, "blk.0.attn_k.weight");
  write_bytes(path, {full.begin(), full.begin() + ip.ne0 + 3});
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"truncated in tensor info #1 (`blk.0.attn_k.weight`) at byte " +
                     std::to_string(ip.ne0) + ": ne[0] does not fit"}));

  // Inside the last tensor's data.
  write_bytes(path, {full.begin(), full.begin() + needed - 1});
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"tensor `blk.0.attn_k.weight` data [" +
                     std::to_string(f->data_offset() + k.offset) + ", " + std::to_string(needed) +
                     ") past end of file (size " + std::to_string(needed - 1) + ")"}));

  // Every shorter prefix must be refused cleanly (ASan/UBSan builds check no read strays).
  // Only the last tensor's trailing padding may be cut. Shrinking one file in place is cheap.
  write_bytes(path, full);
  size_t refused = 0;
  for (size_t n = needed; n-- > 0;) {
    fs::resize_file(path, n);
    try {
      GgufFile::open(path);
    } catch (const ModelFileError& e) {
      if (std::string(e.what()).rfind(path + ": ", 0) == 0) ++refused;
    }
  }
  BOOST_TEST(refused == needed);
  write_bytes(path, {full.begin(), full.begin() + needed});
  BOOST_CHECK_NO_THROW(GgufFile::open(path));
}

BOOST_AUTO_TEST_CASE(bad_header) {
  const Sample s = write_sample("hdr_src.gguf");
  const auto full = read_bytes(s.path);
  const std::string path = tmp_path("hdr.gguf");

  auto b = full;
  std::memcpy(b.data(), "GGML", 4);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"not a GGUF file", "47 47 4d 4c"}));

  for (uint32_t v : {1u, 4u, 0u}) {
    b = full;
    patch<uint32_t>(b, 4, v);
    write_bytes(path, b);
    BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                          msg_has(path, {"unsupported GGUF version " + std::to_string(v)}));
  }
  b = full;
  patch<uint32_t>(b, 4, 0x03000000u);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError, msg_has(path, {"big-endian"}));

  // Version 2 has the same layout for little-endian files and is accepted.
  b = full;
  patch<uint32_t>(b, 4, 2);
  write_bytes(path, b);
  BOOST_TEST(GgufFile::open(path)->version() == 2u);

  // Absurd counts are refused before anything is allocated for them.
  b = full;
  patch<uint64_t>(b, 16, uint64_t{1} << 60);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"truncated in header", "metadata count 1152921504606846976"}));
  b = full;
  patch<uint64_t>(b, 8, ~uint64_t{0});
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"tensor count 18446744073709551615"}));

  write_bytes(path, {});
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError, msg_has(path, {"empty"}));
  BOOST_CHECK_EXCEPTION(GgufFile::open(tmp_path("missing.gguf")), ModelFileError,
                        msg_has(tmp_path("missing.gguf"), {"cannot open"}));
}

BOOST_AUTO_TEST_CASE(bad_metadata) {
  const Sample s = write_sample("meta_src.gguf");
  const auto full = read_bytes(s.path);
  const std::string path = tmp_path("badmeta.gguf");
  const auto f = GgufFile::open(s.path);

  BOOST_CHECK_EXCEPTION(f->get_int("gemma4.nope"), ModelFileError,
                        msg_has(s.path, {"metadata key `gemma4.nope` not found"}));
  BOOST_CHECK_EXCEPTION(
      f->get_string("gemma4.block_count"), ModelFileError,
      msg_has(s.path, {"metadata key `gemma4.block_count` has type uint32, expected string"}));
  BOOST_CHECK_EXCEPTION(
      f->get_int("general.architecture"), ModelFileError,
      msg_has(s.path, {"`general.architecture` has type string, expected an integer"}));
  BOOST_CHECK_EXCEPTION(
      f->get_string_array("k.arr"), ModelFileError,
      msg_has(s.path, {"`k.arr` has type array[uint32], expected array[string]"}));
  BOOST_CHECK_EXCEPTION(f->get_bool_or("k.float", false), ModelFileError,
                        msg_has(s.path, {"`k.float` has type float32, expected bool"}));

  // k.arr: key chars, then value type (ARRAY), element type, count.
  const size_t arr = find_str(full, "k.arr") + 5;
  BOOST_REQUIRE_EQUAL(peek<uint32_t>(full, arr), 9u);
  auto b = full;
  patch<uint32_t>(b, arr + 4, 9);  // array of arrays
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"metadata key `k.arr` is a nested array", "metadata key #3"}));

  b = full;
  patch<uint32_t>(b, arr, 13);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"`k.arr` has unknown value type id 13"}));

  b = full;
  patch<uint64_t>(b, arr + 8, uint64_t{1} << 62);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"truncated in metadata key #3 (`k.arr`)",
                                       "array of 4611686018427387904 uint32 elements"}));

  // An absurd string length in a key.
  b = full;
  patch<uint64_t>(b, arr - 5 - 8, uint64_t{1} << 62);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"truncated in metadata key #3 at byte", "key of 4611686018427387904 bytes"}));

  // Duplicate key: rename k.arr to k.flo... by making "k.float" appear twice is awkward, so write
  // two keys of the same length and rename the second to the first.
  {
    GgufWriter w;
    w.set_u32("dup.a", 1);
    w.set_u32("dup.b", 2);
    w.write(path);
    b = read_bytes(path);
    b[find_str(b, "dup.b") + 4] = 'a';
    write_bytes(path, b);
    BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                          msg_has(path, {"duplicate metadata key `dup.a`"}));
  }

  // general.alignment must be a power of two.
  {
    GgufWriter w(64);
    w.write(path);
    b = read_bytes(path);
    const size_t v = find_str(b, "general.alignment") + 17 + 4;
    BOOST_REQUIRE_EQUAL(peek<uint32_t>(b, v), 64u);
    patch<uint32_t>(b, v, 48);
    write_bytes(path, b);
    BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                          msg_has(path, {"general.alignment = 48 is not a power of two"}));
    // Below 8 (the format's minimum) floats could be misaligned (fuzz/regressions/gguf_model).
    patch<uint32_t>(b, v, 2);
    write_bytes(path, b);
    BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                          msg_has(path, {"general.alignment = 2 is not a power of two in [8"}));
  }
}

BOOST_AUTO_TEST_CASE(bad_tensor_infos) {
  const Sample s = write_sample("ti_src.gguf");
  const auto full = read_bytes(s.path);
  const std::string path = tmp_path("badti.gguf");
  const InfoPos q = info_pos(full, "blk.0.attn_q.weight");
  const InfoPos k = info_pos(full, "blk.0.attn_k.weight");
  BOOST_REQUIRE_EQUAL(peek<uint32_t>(full, q.type), 0u);
  BOOST_REQUIRE_EQUAL(peek<uint32_t>(full, k.type), 8u);

  auto b = full;
  patch<uint32_t>(b, k.type, 99);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"tensor `blk.0.attn_k.weight` has ggml type 99 (unknown)"}));

  b = full;
  patch<uint32_t>(b, k.type, 6);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"tensor `blk.0.attn_k.weight` has ggml type 6 (q5_0)", "does not support"}));

  // A known type whose block size does not divide ne[0] = 8.
  b = full;
  patch<uint32_t>(b, q.type, 8);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"tensor `blk.0.attn_q.weight` of type q8_0 has ne[0] = 8", "block size 32"}));

  b = full;
  patch<uint32_t>(b, q.n_dims, 5);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"tensor `blk.0.attn_q.weight` has n_dims = 5"}));

  // A shape far larger than the file.
  b = full;
  patch<uint64_t>(b, q.ne0 + 8, uint64_t{1} << 40);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"tensor `blk.0.attn_q.weight` shape [8, 1099511627776]",
                                       "larger than the file"}));

  const auto f = GgufFile::open(s.path);
  const uint64_t k_off = peek<uint64_t>(full, k.offset);
  b = full;
  patch<uint64_t>(b, k.offset, k_off + 4);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"tensor `blk.0.attn_k.weight` data offset " + std::to_string(k_off + 4) +
                     " is not a multiple of the alignment 32"}));

  b = full;
  patch<uint64_t>(b, k.offset, k_off + 32);
  write_bytes(path, b);
  const size_t begin = f->data_offset() + k_off + 32;
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"tensor `blk.0.attn_k.weight` data [" + std::to_string(begin) + ", " +
                     std::to_string(begin + 136) + ") past end of file (size " +
                     std::to_string(full.size()) + ")"}));

  b = full;
  patch<uint64_t>(b, k.offset, uint64_t{1} << 63);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(GgufFile::open(path), ModelFileError,
                        msg_has(path, {"tensor `blk.0.attn_k.weight` data [", "past end of file"}));

  // Duplicate tensor name: both names have the same length; rename the second to the first.
  b = full;
  std::memcpy(b.data() + find_str(b, "blk.0.attn_k.weight"), "blk.0.attn_q.weight", 19);
  write_bytes(path, b);
  BOOST_CHECK_EXCEPTION(
      GgufFile::open(path), ModelFileError,
      msg_has(path, {"duplicate tensor name `blk.0.attn_q.weight`", "tensor info #1"}));
}

BOOST_AUTO_TEST_CASE(writer_rejects_bad_arguments) {
  GgufWriter w;
  const float d[4] = {};
  BOOST_CHECK_THROW(w.add_tensor("x", DType::F32, {4}, d, 12), EngineError);
  BOOST_CHECK_THROW(w.add_tensor("x", DType::Q8_0, {4}, d, 16), EngineError);
  BOOST_CHECK_THROW(w.add_tensor(std::string(64, 'n'), DType::F32, {4}, d, 16), EngineError);
  BOOST_CHECK_THROW(w.add_tensor("x", DType::F32, {1, 1, 1, 1, 4}, d, 16), EngineError);
  w.add_tensor("x", DType::F32, {4}, d, 16);
  BOOST_CHECK_THROW(w.add_tensor("x", DType::F32, {4}, d, 16), EngineError);
  BOOST_CHECK_THROW(w.set_value("v", scalar(GgufType::UINT8, 256)), EngineError);
  BOOST_CHECK_THROW(w.set_value("v", array_of(GgufType::ARRAY)), EngineError);
  BOOST_CHECK_THROW(w.set_u64("v", ~uint64_t{0}), EngineError);
  BOOST_CHECK_THROW(GgufWriter(48).write(tmp_path("never.gguf")), EngineError);
  BOOST_CHECK_EXCEPTION(w.write("/nonexistent-dir/x.gguf"), ModelFileError,
                        msg_has("/nonexistent-dir/x.gguf", {"cannot create"}));
}
