#define BOOST_TEST_MODULE test_quant
#include <dlfcn.h>
#include <immintrin.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "model/formats/dtype.h"
#include "model/formats/quant.h"

using namespace rawflow;

namespace {

// llama.cpp's own ggml, as shipped prebuilt by node-llama-cpp (tests/npm): the reference the
// quantizers must match bit for bit.
std::string ggml_lib_dir() {
  const char* env = std::getenv("RAWFLOW_SOURCE_DIR");
  const std::filesystem::path src =
      env ? std::filesystem::path(env)
          : std::filesystem::path(__FILE__).parent_path().parent_path();
  return (src / "tests/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64").string();
}

void* ggml_base() {
  static void* handle = [] {
    const std::string path = ggml_lib_dir() + "/libggml-base.so";
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) BOOST_FAIL("cannot load llama.cpp's ggml (" << path << "): " << dlerror());
    return h;
  }();
  return handle;
}

template <typename Fn>
Fn ggml_fn(const char* name) {
  void* sym = dlsym(ggml_base(), name);
  if (!sym) BOOST_FAIL("ggml symbol missing: " << name);
  return reinterpret_cast<Fn>(sym);
}

using QuantizeRefFn = void (*)(const float*, void*, int64_t);
using DequantizeFn = void (*)(const void*, float*, int64_t);

struct TypeNames {
  DType type;
  const char* quantize_ref;
  const char* dequantize;
};
const TypeNames kBlockTypes[] = {
    {DType::Q4_0, "quantize_row_q4_0_ref", "dequantize_row_q4_0"},
    {DType::Q8_0, "quantize_row_q8_0_ref", "dequantize_row_q8_0"},
    {DType::Q4_K, "quantize_row_q4_K_ref", "dequantize_row_q4_K"},
    {DType::Q5_K, "quantize_row_q5_K_ref", "dequantize_row_q5_K"},
    {DType::Q6_K, "quantize_row_q6_K_ref", "dequantize_row_q6_K"},
};

// Inputs that exercise the quantizers' branches: Gaussian, heavy-tailed with outliers, all-zero
// and constant groups, tiny magnitudes, one-signed groups (K-quant mins), and ggml's own
// test-quantize-fns waveform.
std::vector<std::vector<float>> test_rows(int64_t n) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> gauss(0.f, 1.f);
  std::vector<std::vector<float>> rows;
  std::vector<float> r(n);
  for (auto& v : r) v = gauss(rng);
  rows.push_back(r);
  for (auto& v : r) v = gauss(rng) * gauss(rng) * gauss(rng) * 0.02f;
  rows.push_back(r);
  for (int64_t i = 0; i < n; ++i)
    r[i] = (i / 256) % 3 == 0 ? 0.f : (i / 32) % 4 == 1 ? 0.75f : gauss(rng);
  rows.push_back(r);
  for (auto& v : r) v = gauss(rng) * 1e-6f;
  rows.push_back(r);
  for (int64_t i = 0; i < n; ++i) r[i] = std::fabs(gauss(rng)) + ((i / 128) % 2 ? 3.f : 0.f);
  rows.push_back(r);
  for (int64_t i = 0; i < n; ++i) r[i] = 0.1f + 2 * std::cos(static_cast<float>(i) + 0.25f);
  rows.push_back(r);
  return rows;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fp16_matches_f16c_hardware) {
  // F16C is an independent implementation of IEEE binary16 with round-to-nearest-even.
  for (uint32_t h = 0; h < 65536; ++h) {
    const float want = _cvtsh_ss(static_cast<unsigned short>(h));
    const float got = fp16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      BOOST_REQUIRE(std::isnan(got));
    } else {
      BOOST_REQUIRE_MESSAGE(bits(got) == bits(want), "fp16 0x" << std::hex << h);
    }
  }
  std::mt19937 rng(7);
  std::vector<float> probes = {0.f,
                               -0.f,
                               65504.f,
                               65520.f,
                               65519.99f,
                               6.1035156e-05f,
                               5.9604645e-08f,
                               2.9802322e-08f,
                               2.9802326e-08f,
                               1.f + 1.f / 2048,
                               1.f + 3.f / 2048,
                               INFINITY,
                               -INFINITY,
                               1e-30f,
                               -3.3e9f};
  for (int i = 0; i < 2000000; ++i) probes.push_back(from_bits(rng()));
  for (float f : probes) {
    if (std::isnan(f)) {
      BOOST_REQUIRE_EQUAL(f32_to_fp16(f) & 0x7FFF, 0x7E00);  // ggml's canonical quiet NaN
      continue;
    }
    const uint16_t want = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
    BOOST_REQUIRE_MESSAGE(f32_to_fp16(f) == want, "f32 bits 0x" << std::hex << bits(f));
  }
}

BOOST_AUTO_TEST_CASE(bf16_rounds_to_nearest_even) {
  BOOST_CHECK_EQUAL(f32_to_bf16(1.0f), 0x3F80);
  BOOST_CHECK_EQUAL(f32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie, even stays
  BOOST_CHECK_EQUAL(f32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie, odd rounds up
  BOOST_CHECK_EQUAL(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);  // above half
  BOOST_CHECK_EQUAL(f32_to_bf16(from_bits(0xBF807FFF)), 0xBF80);  // below half, negative
  BOOST_CHECK_EQUAL(f32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // overflow to +inf
  BOOST_CHECK_EQUAL(f32_to_bf16(from_bits(0x7FA00000)), 0x7FE0);  // signalling NaN made quiet
  BOOST_CHECK_EQUAL(bf16_to_f32(0xC040), -3.0f);
}

BOOST_AUTO_TEST_CASE(f16_bf16_rows_match_ggml) {
  using RowFn = void (*)(const float*, uint16_t*, int64_t);
  const auto to_f16 = ggml_fn<RowFn>("ggml_fp32_to_fp16_row");
  const auto to_bf16 = ggml_fn<RowFn>("ggml_fp32_to_bf16_row_ref");
  for (const auto& row : test_rows(4096)) {
    const int64_t n = static_cast<int64_t>(row.size());
    std::vector<uint16_t> ours(n), theirs(n);
    quantize_row(DType::F16, row.data(), ours.data(), n);
    to_f16(row.data(), theirs.data(), n);
    BOOST_REQUIRE(ours == theirs);
    quantize_row(DType::BF16, row.data(), ours.data(), n);
    to_bf16(row.data(), theirs.data(), n);
    BOOST_REQUIRE(ours == theirs);
  }
}

BOOST_AUTO_TEST_CASE(block_quantizers_match_ggml_bit_for_bit) {
  const int64_t n = 256 * 64;
  for (const auto& t : kBlockTypes) {
    const auto ref_q = ggml_fn<QuantizeRefFn>(t.quantize_ref);
    const auto ref_dq = ggml_fn<DequantizeFn>(t.dequantize);
    int row_index = 0;
    for (const auto& row : test_rows(n)) {
      const size_t bytes = dtype_row_bytes(t.type, n);
      std::vector<uint8_t> ours(bytes, 0xAA), theirs(bytes, 0x55);
      quantize_row(t.type, row.data(), ours.data(), n);
      ref_q(row.data(), theirs.data(), n);
      size_t first_diff = bytes;
      for (size_t i = 0; i < bytes && first_diff == bytes; ++i)
        if (ours[i] != theirs[i]) first_diff = i;
      BOOST_TEST_INFO(dtype_name(t.type)
                      << " row " << row_index << " first differing byte " << first_diff);
      BOOST_CHECK(first_diff == bytes);
      std::vector<float> dq_ours(n), dq_theirs(n);
      dequantize_row(t.type, theirs.data(), dq_ours.data(), n);
      ref_dq(theirs.data(), dq_theirs.data(), n);
      BOOST_CHECK(std::memcmp(dq_ours.data(), dq_theirs.data(), n * sizeof(float)) == 0);
      ++row_index;
    }
  }
}

BOOST_AUTO_TEST_CASE(q4_0_hand_made_block) {
  // d = 0.5 (fp16 0x3800); byte j holds element j in its low nibble and element 16+j in its high
  // nibble; values are (nibble - 8) * d.
  uint8_t blk[18];
  const uint16_t d = 0x3800;
  std::memcpy(blk, &d, 2);
  for (int j = 0; j < 16; ++j) blk[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_0, blk, y, 32);
  for (int j = 0; j < 16; ++j) {
    BOOST_CHECK_EQUAL(y[j], (j - 8) * 0.5f);
    BOOST_CHECK_EQUAL(y[16 + j], (7 - j) * 0.5f);
  }
  // And quantizing those values back reproduces the block: max |x| = 4 at element 0 (x = -4),
  // so d = -4 / -8 = 0.5 exactly.
  uint8_t back[18];
  quantize_row(DType::Q4_0, y, back, 32);
  BOOST_CHECK(std::memcmp(back, blk, 18) == 0);
}

BOOST_AUTO_TEST_CASE(q8_0_hand_made_block) {
  uint8_t blk[34];
  const uint16_t d = 0x3400;  // 0.25
  std::memcpy(blk, &d, 2);
  for (int j = 0; j < 32; ++j) blk[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(4 * j - 127));
  float y[32];
  dequantize_row(DType::Q8_0, blk, y, 32);
  for (int j = 0; j < 32; ++j) BOOST_CHECK_EQUAL(y[j], (4 * j - 127) * 0.25f);
}

BOOST_AUTO_TEST_CASE(q4_K_and_q5_K_hand_made_blocks) {
  // Field definitions (ggml-common.h): d, dmin (fp16); 12 bytes holding eight 6-bit scales sc[j]
  // and mins m[j]: bytes 0-3 = sc[0..3] | top 2 bits of sc[4..7] in bits 6-7; bytes 4-7 = m[0..3]
  // | top 2 bits of m[4..7]; bytes 8-11 = low 4 bits of sc[4..7] | low 4 bits of m[4..7] << 4.
  // 64-element chunk c: qs byte 32c+l low nibble = element 64c+l, high nibble = 64c+32+l; Q5_K's
  // fifth bit of element 64c+32h+l is bit 2c+h of qh[l]. Element value = d*sc*q - dmin*m.
  const int sc[8] = {1, 17, 33, 63, 62, 20, 45, 5};
  const int mn[8] = {0, 63, 5, 31, 48, 2, 16, 60};
  const float d = 0.0625f, dmin = 0.125f;
  uint8_t scales[12] = {};
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  auto q_of = [](int e, int nmax) { return (e * 7 + e / 9) % (nmax + 1); };
  for (int bitsq : {4, 5}) {
    const int nmax = (1 << bitsq) - 1;
    std::vector<uint8_t> blk(bitsq == 4 ? 144 : 176, 0);
    const uint16_t dh = f32_to_fp16(d), dminh = f32_to_fp16(dmin);
    std::memcpy(&blk[0], &dh, 2);
    std::memcpy(&blk[2], &dminh, 2);
    std::memcpy(&blk[4], scales, 12);
    uint8_t* qh = bitsq == 5 ? &blk[16] : nullptr;
    uint8_t* qs = bitsq == 5 ? &blk[48] : &blk[16];
    for (int e = 0; e < 256; ++e) {
      const int q = q_of(e, nmax), c = e / 64, h = (e % 64) / 32, l = e % 32;
      qs[32 * c + l] |= static_cast<uint8_t>((q & 0xF) << (4 * h));
      if (qh && q > 15) qh[l] |= static_cast<uint8_t>(1 << (2 * c + h));
    }
    float y[256];
    dequantize_row(bitsq == 4 ? DType::Q4_K : DType::Q5_K, blk.data(), y, 256);
    for (int e = 0; e < 256; ++e) {
      const int s = e / 32;
      // Every product here is exact in float, so the check is exact.
      const float want = d * sc[s] * q_of(e, nmax) - dmin * mn[s];
      BOOST_REQUIRE_MESSAGE(y[e] == want, "q" << bitsq << "_K element " << e);
    }
  }
}

BOOST_AUTO_TEST_CASE(q6_K_hand_made_block) {
  // Layout: ql[128], qh[64], int8 scales[16], fp16 d. Element e: half hf = e/128, r = e%128,
  // group g = r/32, l = r%32; low 4 bits in ql[64hf + l + 32(g&1)] (low nibble for g<2, high for
  // g>=2), top 2 bits in qh[32hf + l] at bit 2g. Value = d * scales[e/16] * (q - 32).
  uint8_t blk[210] = {};
  const float d = 0.25f;
  auto q_of = [](int e) { return (e * 5 + e / 7) % 64; };
  for (int e = 0; e < 256; ++e) {
    const int q = q_of(e), hf = e / 128, r = e % 128, g = r / 32, l = r % 32;
    blk[64 * hf + l + 32 * (g & 1)] |= static_cast<uint8_t>((q & 0xF) << (g >= 2 ? 4 : 0));
    blk[128 + 32 * hf + l] |= static_cast<uint8_t>((q >> 4) << (2 * g));
  }
  for (int s = 0; s < 16; ++s) blk[192 + s] = static_cast<uint8_t>(static_cast<int8_t>(9 * s - 70));
  const uint16_t dh = f32_to_fp16(d);
  std::memcpy(&blk[208], &dh, 2);
  float y[256];
  dequantize_row(DType::Q6_K, blk, y, 256);
  for (int e = 0; e < 256; ++e)
    BOOST_REQUIRE_MESSAGE(y[e] == d * (9 * (e / 16) - 70) * (q_of(e) - 32), "element " << e);
}

BOOST_AUTO_TEST_CASE(round_trip_error_bounds) {
  const int64_t n = 4096;
  const auto rows = test_rows(n);
  // Strict per-element bounds where the format allows one. Q8_0: d = amax/127, |x - q*d| <= d/2,
  // plus storing d as fp16 (error e16) moves q*d by at most 127*e16. Q4_0: d = max/-8, the one
  // element at +8|d| clips to level 7, so the bound is |d| plus 8*e16. F16/BF16: half an ulp of
  // the format (2^-11 / 2^-8 relative), checked only in fp16's normal range.
  for (const auto& row : rows) {
    std::vector<uint8_t> buf(dtype_row_bytes(DType::F32, n));  // big enough for every type
    std::vector<float> back(n);
    for (DType t : {DType::Q8_0, DType::Q4_0}) {
      quantize_row(t, row.data(), buf.data(), n);
      dequantize_row(t, buf.data(), back.data(), n);
      for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(row[32 * b + j]));
        const float d = t == DType::Q8_0 ? amax / 127 : amax / 8;
        // fp16 keeps 11 significant bits for normal d; below 2^-14 it is subnormal and its
        // absolute rounding error is at most 2^-25.
        const float d16_err = std::max(d / 2048, 0x1.0p-25f);
        const float bound =
            t == DType::Q8_0 ? (d / 2 + 127 * d16_err) * 1.0001f : (d + 8 * d16_err) * 1.0001f;
        for (int j = 0; j < 32; ++j) {
          const float err = std::fabs(row[32 * b + j] - back[32 * b + j]);
          BOOST_REQUIRE_MESSAGE(err <= bound + 1e-30f, dtype_name(t)
                                                           << " element " << 32 * b + j << " err "
                                                           << err << " > " << bound);
        }
      }
    }
    for (DType t : {DType::F16, DType::BF16}) {
      quantize_row(t, row.data(), buf.data(), n);
      dequantize_row(t, buf.data(), back.data(), n);
      const float rel = t == DType::F16 ? 1.f / 2048 : 1.f / 256;
      for (int64_t i = 0; i < n; ++i)
        if (std::fabs(row[i]) > 1e-4f)  // normal range of fp16
          BOOST_REQUIRE(std::fabs(row[i] - back[i]) <= rel * std::fabs(row[i]));
    }
  }
  // K-quants have no per-element bound (their scales are searched, and clipping is allowed). Use
  // ggml's own acceptance test (tests/test-quantize-fns.cpp): data 0.1 + 2cos(i + offset), metric
  // sqrt(sum err^2)/n, threshold MAX_QUANTIZATION_TOTAL_ERROR = 0.002 for all these types.
  const auto& wave = rows.back();
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    std::vector<uint8_t> buf(dtype_row_bytes(t, n));
    std::vector<float> back(n);
    quantize_row(t, wave.data(), buf.data(), n);
    dequantize_row(t, buf.data(), back.data(), n);
    double sum2 = 0, sumx2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum2 += (wave[i] - back[i]) * (wave[i] - back[i]);
      sumx2 += wave[i] * wave[i];
    }
    const double metric = std::sqrt(sum2) / n;
    BOOST_TEST_MESSAGE(dtype_name(t) << " rms error / rms x = " << std::sqrt(sum2 / sumx2));
    BOOST_CHECK_MESSAGE(metric < 0.002, dtype_name(t) << " total error " << metric);
  }
  // More bits, less error: the K-quant ladder must be ordered on Gaussian data.
  double prev = 1e9;
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0}) {
    std::vector<uint8_t> buf(dtype_row_bytes(t, n));
    std::vector<float> back(n);
    quantize_row(t, rows[0].data(), buf.data(), n);
    dequantize_row(t, buf.data(), back.data(), n);
    double sum2 = 0;
    for (int64_t i = 0; i < n; ++i) sum2 += (rows[0][i] - back[i]) * (rows[0][i] - back[i]);
    const double rms = std::sqrt(sum2 / n);
    BOOST_TEST_MESSAGE(dtype_name(t) << " gaussian rms error " << rms);
    BOOST_CHECK_LT(rms, prev * 0.75);
    prev = rms;
  }
}

BOOST_AUTO_TEST_CASE(rejects_partial_blocks) {
  std::vector<float> x(300, 1.f);
  std::vector<uint8_t> buf(1024);
  BOOST_CHECK_THROW(quantize_row(DType::Q4_K, x.data(), buf.data(), 300), std::exception);
  BOOST_CHECK_THROW(dequantize_row(DType::Q4_0, buf.data(), x.data(), 33), std::exception);
}
