#define BOOST_TEST_MODULE test_media_prep
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "media/image_budget.h"
#include "media/media_error.h"
#include "media/resize.h"
#include "media/video_sampling.h"
#include "model/error.h"
#include "model/gemma4/audio_frames.h"
#include "model/gemma4/vision_patches.h"

namespace fs = std::filesystem;
using namespace rawflow;
using namespace rawflow::media;

namespace {

// ---------------------------------------------------------------------------------------------
// Token budget (spec §3.1)

struct SizeCase {
  int width, height, budget;
  int want_width, want_height;
};

void check_hf_size(const SizeCase& c) {
  BOOST_TEST_CONTEXT(c.width << "x" << c.height << " at budget " << c.budget) {
    const GridSize g = hf_target_size(c.width, c.height, c.budget);
    BOOST_TEST(g.width == c.want_width);
    BOOST_TEST(g.height == c.want_height);
    BOOST_TEST(g.width % kTileSide == 0);
    BOOST_TEST(g.height % kTileSide == 0);
    BOOST_TEST(g.tokens() == int64_t{g.cols()} * g.rows());
    BOOST_TEST(g.tokens() <= c.budget);
    BOOST_TEST(g.tokens() >= 1);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(hf_budget_spec_examples) {
  // Spec §3.1, budget 280 (W×H): 1024×1024 → 768×768 (256), 640×480 → 912×672 (266),
  // 1920×1080 → 1056×576 (264), 100×100 → upscaled to 768×768 (256).
  check_hf_size({1024, 1024, 280, 768, 768});
  check_hf_size({640, 480, 280, 912, 672});
  check_hf_size({1920, 1080, 280, 1056, 576});
  check_hf_size({100, 100, 280, 768, 768});
  BOOST_TEST(hf_target_size(1024, 1024, 280).tokens() == 256);
  BOOST_TEST(hf_target_size(640, 480, 280).tokens() == 266);
  BOOST_TEST(hf_target_size(1920, 1080, 280).tokens() == 264);
  BOOST_TEST(hf_target_size(100, 100, 280).tokens() == 256);
  BOOST_TEST(hf_target_size(640, 480).tokens() == 266);  // 280 is the default
}

BOOST_AUTO_TEST_CASE(hf_budget_table) {
  // Spec §3.1: square / 1920×1080 token counts for each budget. Any square gives floor(√B)².
  struct Row {
    int budget;
    int64_t square, hd;
  };
  const Row table[] = {
      {70, 64, 66}, {140, 121, 120}, {280, 256, 264}, {560, 529, 527}, {1120, 1089, 1100}};
  for (const Row& r : table) {
    BOOST_TEST_CONTEXT("budget " << r.budget) {
      for (int side : {1, 3, 100, 333, 1024, 4000}) {
        BOOST_TEST(hf_target_size(side, side, r.budget).tokens() == r.square);
      }
      BOOST_TEST(hf_target_size(1920, 1080, r.budget).tokens() == r.hd);
    }
  }
}

BOOST_AUTO_TEST_CASE(hf_budget_odd_and_extreme_sizes) {
  // Expected sizes from HF's get_aspect_ratio_preserving_size run in Python (the function as
  // quoted in the spec's sources), not from this implementation.
  const SizeCase cases[] = {
      // odd sizes
      {1023, 767, 280, 912, 672},
      {641, 479, 280, 912, 672},
      {333, 777, 280, 480, 1200},
      {7, 5, 280, 912, 672},
      {12345, 6789, 1120, 2160, 1152},
      {333, 777, 70, 240, 576},
      {4000, 3000, 280, 912, 672},
      {3000, 200, 70, 1536, 96},
      {200, 3000, 1120, 384, 6192},
      // one side floors to zero: it becomes one tile, the other min(floor(long/short)·48, B·48)
      {10000, 10, 280, 13440, 48},
      {1, 5000, 280, 48, 13440},
      {100000, 1, 280, 13440, 48},
      {1, 5000, 1120, 48, 53760},
      {49, 2, 70, 1968, 48},
      // not zero-floored at the largest budget: 1058 tiles in one row
      {10000, 10, 1120, 50784, 48},
      // 1-pixel images: upscaled to fill the budget
      {1, 1, 70, 384, 384},
      {1, 1, 280, 768, 768},
      {1, 1, 1120, 1584, 1584},
      {2, 1, 280, 1104, 528},
  };
  for (const SizeCase& c : cases) check_hf_size(c);
  // The grid never needs more than 1120 positions per axis (the embedder's position table).
  for (int budget : kImageBudgets) {
    for (auto [w, h] : {std::pair{1, 1000000}, std::pair{1000000, 1}, std::pair{1, 1}}) {
      const GridSize g = hf_target_size(w, h, budget);
      BOOST_TEST(g.cols() <= 1120);
      BOOST_TEST(g.rows() <= 1120);
    }
  }
}

BOOST_AUTO_TEST_CASE(hf_budget_properties_over_many_sizes) {
  // Never above the budget, sides multiples of 48, and a side that did not floor to zero stays
  // within one tile of the aspect-preserving ideal.
  std::mt19937 gen(12345);
  std::uniform_int_distribution<int> side(1, 9000);
  for (int i = 0; i < 20000; ++i) {
    const int w = side(gen), h = side(gen);
    for (int budget : kImageBudgets) {
      const GridSize g = hf_target_size(w, h, budget);
      if (g.tokens() > budget || g.width % 48 || g.height % 48 || g.tokens() < 1) {
        BOOST_FAIL(w << "x" << h << " at " << budget << " -> " << g.width << "x" << g.height);
      }
      const double f = std::sqrt(budget * 2304.0 / (double(w) * h));
      if (g.width > f * w + 1e-6 && g.height > f * h + 1e-6) {
        BOOST_FAIL(w << "x" << h << " at " << budget << " grew both sides beyond the ideal");
      }
      if (g.height > 48 && g.width > 48 && (f * w - g.width >= 48 || f * h - g.height >= 48)) {
        BOOST_FAIL(w << "x" << h << " at " << budget << " lost a whole tile");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(hf_budget_errors) {
  for (int bad : {0, -280, 69, 71, 279, 281, 2240}) {
    BOOST_CHECK_THROW(hf_target_size(640, 480, bad), MediaError);
  }
  BOOST_CHECK_THROW(hf_target_size(0, 480), MediaError);
  BOOST_CHECK_THROW(hf_target_size(640, 0), MediaError);
  BOOST_CHECK_THROW(hf_target_size(-1, 480), MediaError);
  BOOST_CHECK_THROW(hf_target_size(640, std::numeric_limits<int>::min()), MediaError);
  try {
    hf_target_size(640, 480, 300);
    BOOST_FAIL("budget 300 accepted");
  } catch (const MediaError& e) {
    BOOST_TEST(std::string(e.what()).find("300") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("70, 140, 280, 560, 1120") != std::string::npos);
  }
  // The largest representable image is fine (its area needs 64-bit arithmetic).
  const int big = std::numeric_limits<int>::max();
  BOOST_TEST(hf_target_size(big, big).tokens() == 256);
  BOOST_TEST(hf_target_size(big, 1).tokens() == 280);
  BOOST_TEST(is_image_budget(280));
  BOOST_TEST(!is_image_budget(281));
}

BOOST_AUTO_TEST_CASE(llama_policy_matches_errata_examples) {
  // Spec §10.1 (llama.cpp, token limits 70..1120), W×H: 1024² → 1008² (441),
  // 1920×1080 → 1920×1104 (920), 640×480 → 624×480 (130), 100×100 → 432×432 (81).
  const SizeCase cases[] = {
      {1024, 1024, 0, 1008, 1008},
      {1920, 1080, 0, 1920, 1104},
      {640, 480, 0, 624, 480},
      {100, 100, 0, 432, 432},
      // Further expectations from a float32 Python transcription of calc_size_preserved_ratio.
      {1, 1, 0, 432, 432},
      {4000, 3000, 0, 1824, 1344},
      {3000, 200, 0, 3024, 192},
      {10000, 10, 0, 9984, 48},
      {7, 5, 0, 480, 384},
      {1023, 767, 0, 1008, 768},
  };
  for (const SizeCase& c : cases) {
    BOOST_TEST_CONTEXT(c.width << "x" << c.height) {
      const GridSize g = llama_target_size(c.width, c.height);
      BOOST_TEST(g.width == c.want_width);
      BOOST_TEST(g.height == c.want_height);
    }
  }
  BOOST_TEST(llama_target_size(1024, 1024).tokens() == 441);
  BOOST_TEST(llama_target_size(1920, 1080).tokens() == 920);
  BOOST_TEST(llama_target_size(640, 480).tokens() == 130);
  BOOST_TEST(llama_target_size(100, 100).tokens() == 81);
  // The old (40, 280) limits of §3.5: 1920×1080 gives HF's 264 tokens, 640×480 stays at 130.
  BOOST_TEST(llama_target_size(1920, 1080, 40, 280).tokens() == 264);
  BOOST_TEST(llama_target_size(640, 480, 40, 280).tokens() == 130);
  // llama.cpp's own arithmetic overshoots the maximum for extreme ratios (the short side is held
  // at 48): 100000×1 → 507984×48 = 10583 tokens. Reproduced as is; documented in docs/media.md.
  BOOST_TEST(llama_target_size(100000, 1).width == 507984);
  BOOST_CHECK_THROW(llama_target_size(0, 10), MediaError);
  BOOST_CHECK_THROW(llama_target_size(10, 10, 0, 10), MediaError);
  BOOST_CHECK_THROW(llama_target_size(10, 10, 20, 10), MediaError);
  BOOST_CHECK_THROW(llama_target_size(std::numeric_limits<int>::max(), 1), MediaError);
}

// ---------------------------------------------------------------------------------------------
// Resize against Pillow

namespace {

fs::path work_dir() {
  const char* env = std::getenv("RAWFLOW_TEST_WORK");
  fs::path d =
      env ? fs::path(env) : fs::temp_directory_path() / ("rawflow-" + std::to_string(getpid()));
  d /= "test_media_prep";
  fs::create_directories(d);
  return d;
}

fs::path source_dir() {
  const char* env = std::getenv("RAWFLOW_SOURCE_DIR");
  return env ? fs::path(env) : fs::path(__FILE__).parent_path().parent_path();
}

RgbImage make_image(int w, int h) {
  return RgbImage{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
}

void set(RgbImage& im, int x, int y, int ch, int v) {
  im.rgb[(size_t(y) * size_t(im.width) + size_t(x)) * 3 + size_t(ch)] = uint8_t(v);
}

RgbImage gradient(int w, int h) {
  RgbImage im = make_image(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      set(im, x, y, 0, x * 255 / std::max(1, w - 1));
      set(im, x, y, 1, y * 255 / std::max(1, h - 1));
      set(im, x, y, 2, (x + y) * 255 / std::max(1, w + h - 2));
    }
  }
  return im;
}

// Full-scale steps (0 ↔ 255) in both directions: where bicubic overshoots and clamping matters.
RgbImage edges(int w, int h) {
  RgbImage im = make_image(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      set(im, x, y, 0, ((x / 3 + y / 5) % 2) ? 255 : 0);
      set(im, x, y, 1, (x % 7 < 3) ? 255 : 0);
      set(im, x, y, 2, (int64_t{x} * h > int64_t{y} * w) ? 255 : 0);
    }
  }
  return im;
}

RgbImage noise(int w, int h, uint32_t seed) {
  RgbImage im = make_image(w, h);
  std::mt19937 gen(seed);
  for (uint8_t& v : im.rgb) v = uint8_t(gen() >> 24);
  return im;
}

void write_raw(const fs::path& p, const RgbImage& im) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(im.rgb.data()), std::streamsize(im.rgb.size()));
  if (!f) BOOST_FAIL("cannot write " << p);
}

std::vector<uint8_t> read_raw(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) BOOST_FAIL("cannot read " << p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Runs a shell command; returns its exit status and its combined output.
std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) BOOST_FAIL("cannot run: " << command);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

struct Difference {
  int max_abs = 0;
  int64_t count = 0;
};

Difference compare(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  Difference d;
  for (size_t i = 0; i < a.size(); ++i) {
    const int delta = std::abs(int(a[i]) - int(b[i]));
    d.max_abs = std::max(d.max_abs, delta);
    d.count += delta != 0;
  }
  return d;
}

struct ResizeCase {
  std::string name;
  RgbImage src;
  int width, height;
};

std::vector<ResizeCase> resize_cases() {
  return {
      {"gradient 640x480 up to 912x672 (spec example)", gradient(640, 480), 912, 672},
      {"gradient 1024x1024 down to 768x768", gradient(1024, 1024), 768, 768},
      {"noise 1920x1080 down to 1056x576", noise(1920, 1080, 1), 1056, 576},
      {"edges 200x150 down to 77x53", edges(200, 150), 77, 53},
      {"edges 37x29 up to 101x83", edges(37, 29), 101, 83},
      {"noise 300x40 down x, up y", noise(300, 40, 2), 96, 144},
      {"gradient 123x77 vertical only", gradient(123, 77), 123, 200},
      {"noise 99x50 horizontal only", noise(99, 50, 3), 240, 50},
      {"noise 1x1 up to 48x48", noise(1, 1, 4), 48, 48},
      {"edges 10x1000 to 48x480", edges(10, 1000), 48, 480},
      {"noise 1000x800 down ~20x to 48x48", noise(1000, 800, 5), 48, 48},
      {"edges 4000x3 to 1344x48", edges(4000, 3), 1344, 48},
      {"noise 5x7 down to 3x2", noise(5, 7, 6), 3, 2},
      {"edges 97x89 unchanged", edges(97, 89), 97, 89},
      {"edges 641x479 up to 912x672", edges(641, 479), 912, 672},
  };
}

}  // namespace

// Pillow's Image.resize(BICUBIC, reducing_gap=None) on RGB is the reference for
// ResizeArithmetic::Pillow. Tolerance: none — same filter, same double-precision weights, same
// 22-bit fixed point and rounding, so every byte must be equal.
BOOST_AUTO_TEST_CASE(resize_matches_pillow_bit_for_bit) {
  const fs::path python = "/usr/bin/python3";
  const fs::path script = source_dir() / "tests/reference/pil_resize.py";
  BOOST_REQUIRE_MESSAGE(fs::exists(python), python
                                                << " is missing: install python3 and python3-pil "
                                                   "(the resize reference cannot run)");
  BOOST_REQUIRE_MESSAGE(fs::exists(script), script << " is missing");

  const std::vector<ResizeCase> cases = resize_cases();
  const fs::path dir = work_dir();
  std::string command = python.string() + " '" + script.string() + "'";
  for (size_t i = 0; i < cases.size(); ++i) {
    const ResizeCase& c = cases[i];
    const fs::path in = dir / ("in" + std::to_string(i) + ".rgb");
    const fs::path out = dir / ("pil" + std::to_string(i) + ".rgb");
    fs::remove(out);
    write_raw(in, c.src);
    command += " '" + in.string() + "' " + std::to_string(c.src.width) + " " +
               std::to_string(c.src.height) + " '" + out.string() + "' " + std::to_string(c.width) +
               " " + std::to_string(c.height);
  }
  const auto [status, output] = run(command);
  BOOST_TEST_MESSAGE(output);
  BOOST_REQUIRE_MESSAGE(status == 0, "the Pillow reference failed (exit "
                                         << status
                                         << "; is "
                                            "python3-pil installed?):\n"
                                         << output);

  int torch_max = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const ResizeCase& c = cases[i];
    BOOST_TEST_CONTEXT(c.name) {
      const std::vector<uint8_t> want = read_raw(dir / ("pil" + std::to_string(i) + ".rgb"));
      const RgbImage got = resize_bicubic_antialias(c.src, c.width, c.height);
      BOOST_TEST(got.width == c.width);
      BOOST_TEST(got.height == c.height);
      const Difference d = compare(got.rgb, want);
      BOOST_TEST(d.max_abs == 0, "max |Δ| " << d.max_abs << " over " << d.count << " bytes");

      // Measured, not a parity claim: how far PyTorch's int16-weight rounding (ported, not run)
      // moves pixels away from Pillow's. A weight rounded to ~15 instead of 22 bits can flip the
      // rounding of a first-pass byte by 1; the second pass sums such ±1 errors with weights
      // whose absolute values add up to at most 1.25 (bicubic a = −0.5 at phase ½), plus its own
      // weight rounding, so a byte can move by 2 but not 3. Asserted, so a port error shows up.
      const RgbImage torch =
          resize_bicubic_antialias(c.src, c.width, c.height, ResizeArithmetic::TorchUint8);
      const Difference t = compare(torch.rgb, want);
      BOOST_TEST_MESSAGE(c.name << ": TorchUint8 vs Pillow max |Δ| " << t.max_abs << ", " << t.count
                                << " of " << want.size() << " bytes differ");
      BOOST_TEST(t.max_abs <= 2);
      torch_max = std::max(torch_max, t.max_abs);
    }
  }
  BOOST_TEST_MESSAGE("TorchUint8 vs Pillow over all cases: max |Δ| " << torch_max);
}

BOOST_AUTO_TEST_CASE(resize_properties_without_reference) {
  // Constant images stay constant (weights sum to 1 in fixed point up to rounding of ≤ taps/2
  // units of 2^-22, far below half a level), in both arithmetics, up and down.
  for (auto arithmetic : {ResizeArithmetic::Pillow, ResizeArithmetic::TorchUint8}) {
    for (int v : {0, 1, 127, 254, 255}) {
      RgbImage flat = make_image(53, 41);
      std::fill(flat.rgb.begin(), flat.rgb.end(), uint8_t(v));
      for (auto [w, h] : {std::pair{17, 9}, std::pair{160, 120}, std::pair{53, 100}}) {
        const RgbImage r = resize_bicubic_antialias(flat, w, h, arithmetic);
        BOOST_TEST(std::all_of(r.rgb.begin(), r.rgb.end(), [&](uint8_t p) { return p == v; }));
      }
    }
  }
  // A single pixel spreads to the whole output.
  RgbImage one = make_image(1, 1);
  one.rgb = {10, 200, 99};
  const RgbImage big = resize_bicubic_antialias(one, 96, 48);
  for (int y = 0; y < 48; ++y) {
    for (int x = 0; x < 96; ++x) {
      BOOST_TEST((big.at(x, y, 0) == 10 && big.at(x, y, 1) == 200 && big.at(x, y, 2) == 99));
    }
  }
  // Unchanged size: an equal copy.
  const RgbImage e = edges(48, 96);
  const RgbImage same = resize_bicubic_antialias(e, 48, 96);
  BOOST_TEST(same.rgb == e.rgb);
  BOOST_TEST(same.rgb.data() != e.rgb.data());
}

BOOST_AUTO_TEST_CASE(resize_errors) {
  const RgbImage ok = gradient(4, 4);
  BOOST_CHECK_THROW(resize_bicubic_antialias(ok, 0, 4), MediaError);
  BOOST_CHECK_THROW(resize_bicubic_antialias(ok, 4, -1), MediaError);
  BOOST_CHECK_THROW(resize_bicubic_antialias(RgbImage{}, 4, 4), MediaError);
  RgbImage short_buffer = gradient(4, 4);
  short_buffer.rgb.pop_back();
  BOOST_CHECK_THROW(resize_bicubic_antialias(short_buffer, 8, 8), MediaError);
}

// ---------------------------------------------------------------------------------------------
// Patches (spec §3.2)

namespace {

// Each pixel encodes where it is: R = x mod 256, G = y mod 256, B = x/256 + 16·(y/256).
uint8_t coordinate_pixel(int x, int y, int ch) {
  switch (ch) {
    case 0:
      return uint8_t(x % 256);
    case 1:
      return uint8_t(y % 256);
    default:
      return uint8_t(x / 256 + 16 * (y / 256));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(patch_layout_hwc_and_chw) {
  static_assert(kPatchSide == kTileSide);
  const int width = 48 * 7, height = 48 * 6;  // 336×288: x and y cross 256
  RgbImage im = make_image(width, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int ch = 0; ch < 3; ++ch) set(im, x, y, ch, coordinate_pixel(x, y, ch));
    }
  }
  const Patches hwc = patchify(im.rgb.data(), width, height, PatchOrder::HWC);
  const Patches chw = patchify(im.rgb.data(), width, height, PatchOrder::CHW);
  for (const Patches* p : {&hwc, &chw}) {
    BOOST_TEST(p->cols == 7);
    BOOST_TEST(p->rows == 6);
    BOOST_TEST(p->tokens() == 42);
    BOOST_TEST(p->values.size() == size_t(42 * kPatchValues));
    BOOST_TEST(p->pos_x.size() == 42u);
    BOOST_TEST(p->pos_y.size() == 42u);
  }
  int64_t mismatches = 0;
  for (int gy = 0; gy < 6; ++gy) {
    for (int gx = 0; gx < 7; ++gx) {
      const int64_t t = int64_t{gy} * 7 + gx;  // row-major, x fastest
      BOOST_TEST(hwc.pos_x[size_t(t)] == gx);
      BOOST_TEST(hwc.pos_y[size_t(t)] == gy);
      BOOST_TEST(chw.pos_x[size_t(t)] == gx);
      BOOST_TEST(chw.pos_y[size_t(t)] == gy);
      for (int r = 0; r < 48; ++r) {
        for (int c = 0; c < 48; ++c) {
          for (int ch = 0; ch < 3; ++ch) {
            const float want = float(coordinate_pixel(48 * gx + c, 48 * gy + r, ch)) / 255.0f;
            const float h = hwc.values[size_t(t * kPatchValues + (r * 48 + c) * 3 + ch)];
            const float k = chw.values[size_t(t * kPatchValues + ch * 2304 + r * 48 + c)];
            mismatches += (h != want) + (k != want);
          }
        }
      }
    }
  }
  BOOST_TEST(mismatches == 0);
  // Spot checks written out by hand: token 9 = (gx 2, gy 1); its value (r 5, c 7, G) is pixel
  // (x 103, y 53) green = 53; in HWC at (5·48 + 7)·3 + 1 = 742, in CHW at 2304 + 5·48 + 7 = 2551.
  BOOST_TEST(hwc.values[size_t(9 * kPatchValues + 742)] == 53.0f / 255.0f);
  BOOST_TEST(chw.values[size_t(9 * kPatchValues + 2551)] == 53.0f / 255.0f);
  // Last token (gx 6, gy 5), last value (r 47, c 47, B): x 335, y 287 → 1 + 16 = 17.
  BOOST_TEST(hwc.values.back() == 17.0f / 255.0f);
  BOOST_TEST(chw.values.back() == 17.0f / 255.0f);
  // Scaling: 0 → 0, 255 → 1 exactly.
  BOOST_TEST(hwc.values[0] == 0.0f);
  RgbImage white = make_image(48, 48);
  std::fill(white.rgb.begin(), white.rgb.end(), uint8_t(255));
  const Patches w = patchify(white.rgb.data(), 48, 48, PatchOrder::HWC);
  BOOST_TEST(std::all_of(w.values.begin(), w.values.end(), [](float v) { return v == 1.0f; }));
}

BOOST_AUTO_TEST_CASE(patchify_rejects_sizes_that_are_not_tiles) {
  const std::vector<uint8_t> px(size_t(96 * 96 * 3), 0);
  BOOST_CHECK_THROW(patchify(px.data(), 47, 48, PatchOrder::HWC), EngineError);
  BOOST_CHECK_THROW(patchify(px.data(), 48, 49, PatchOrder::CHW), EngineError);
  BOOST_CHECK_THROW(patchify(px.data(), 0, 0, PatchOrder::HWC), EngineError);
  BOOST_CHECK_THROW(patchify(px.data(), -48, 48, PatchOrder::HWC), EngineError);
  BOOST_CHECK_THROW(patchify(nullptr, 48, 48, PatchOrder::HWC), EngineError);
  BOOST_TEST(patchify(px.data(), 96, 48, PatchOrder::HWC).tokens() == 2);
}

// ---------------------------------------------------------------------------------------------
// Audio frames (spec §4)

BOOST_AUTO_TEST_CASE(audio_frames_pad_only_the_last_frame) {
  for (int64_t n : {0, 1, 639, 640, 641, 1280, 16000}) {
    BOOST_TEST_CONTEXT(n << " samples") {
      std::vector<float> samples(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) samples[size_t(i)] = float(i + 1) * 1e-4f - 0.5f;
      const std::vector<float> frames = frame_audio(samples);
      const int64_t want_frames = (n + 639) / 640;
      BOOST_TEST(int64_t(frames.size()) == want_frames * 640);
      BOOST_TEST(int64_t(frames.size()) - n < (n > 0 ? 640 : 1));  // padding within one frame
      int64_t misplaced = 0;
      for (int64_t i = 0; i < int64_t(frames.size()); ++i) {
        const float want = i < n ? samples[size_t(i)] : 0.0f;
        misplaced += frames[size_t(i)] != want;
      }
      BOOST_TEST(misplaced == 0);
    }
  }
  BOOST_TEST(frame_audio(std::vector<float>(16000)).size() == 25u * 640u);  // 25 tokens per second
  BOOST_TEST(frame_audio(std::vector<float>(1)).size() == 640u);
  BOOST_TEST(frame_audio(std::vector<float>(641)).size() == 1280u);
}

// ---------------------------------------------------------------------------------------------
// Video (spec §3.6)

BOOST_AUTO_TEST_CASE(video_frame_indices) {
  BOOST_TEST(sample_frame_indices(10, 4) == (std::vector<int64_t>{0, 2, 5, 7}));
  std::vector<int64_t> identity(32);
  for (int k = 0; k < 32; ++k) identity[size_t(k)] = k;
  BOOST_TEST(sample_frame_indices(32, 32) == identity);
  BOOST_TEST(sample_frame_indices(33, 32) == identity);  // floor(k·33/32) = k for k < 32
  const std::vector<int64_t> hundred = sample_frame_indices(100, 32);
  const std::vector<int64_t> thousand = sample_frame_indices(1000, 32);
  for (int k = 0; k < 32; ++k) {
    BOOST_TEST(hundred[size_t(k)] == int64_t(std::floor(k * 3.125)));  // exact in binary
    BOOST_TEST(thousand[size_t(k)] == int64_t(std::floor(k * 31.25)));
  }
  BOOST_TEST(hundred.back() == 96);
  BOOST_TEST(thousand.back() == 968);
  // No overflow for huge counts: floor(31·(10^15 + 7)/32).
  const int64_t huge = 1000000000000007;
  BOOST_TEST(sample_frame_indices(huge, 32).back() ==
             int64_t((static_cast<__int128>(huge) * 31) / 32));
  BOOST_CHECK_THROW(sample_frame_indices(31, 32), MediaError);
  BOOST_CHECK_THROW(sample_frame_indices(0, 1), MediaError);
  BOOST_CHECK_THROW(sample_frame_indices(10, 0), MediaError);
  BOOST_CHECK_THROW(sample_frame_indices(10, -3), MediaError);
}

BOOST_AUTO_TEST_CASE(video_frames_for_fps) {
  // Expected values from Python's int(F / video_fps * fps).
  BOOST_TEST(frames_for_fps(300, 30, 1) == 10);
  BOOST_TEST(frames_for_fps(100, 30, 1) == 3);
  BOOST_TEST(frames_for_fps(250, 25, 2.5) == 25);
  BOOST_TEST(frames_for_fps(1, 24, 1) == 0);
  BOOST_TEST(frames_for_fps(1000, 29.97, 2) == 66);
  BOOST_TEST(frames_for_fps(7, 3, 3) == 7);
  BOOST_TEST(frames_for_fps(90, 29.97, 29.97) == 90);
  BOOST_CHECK_THROW(frames_for_fps(100, 0, 1), MediaError);
  BOOST_CHECK_THROW(frames_for_fps(100, 30, -1), MediaError);
  BOOST_CHECK_THROW(frames_for_fps(100, std::nan(""), 1), MediaError);
  BOOST_CHECK_THROW(frames_for_fps(100, 30, std::numeric_limits<double>::infinity()), MediaError);
  BOOST_CHECK_THROW(frames_for_fps(-1, 30, 1), MediaError);
}

BOOST_AUTO_TEST_CASE(video_timestamps_mm_ss) {
  // Expected strings printed by Python's f"{int(s // 60):02d}:{int(s % 60):02d}".
  BOOST_TEST(mm_ss(0) == "00:00");
  BOOST_TEST(mm_ss(0.999) == "00:00");
  BOOST_TEST(mm_ss(59.999) == "00:59");
  BOOST_TEST(mm_ss(60) == "01:00");
  BOOST_TEST(mm_ss(61.5) == "01:01");
  BOOST_TEST(mm_ss(3599.9) == "59:59");
  BOOST_TEST(mm_ss(3600) == "60:00");
  BOOST_TEST(mm_ss(6000) == "100:00");
  BOOST_TEST(mm_ss(37.0 / 24.0) == "00:01");
  BOOST_TEST(mm_ss(119.99999999999999) == "01:59");
  BOOST_TEST(mm_ss(0.1 * 3 * 200) == "01:00");  // 60.00000000000001
  BOOST_TEST(mm_ss(5999.999999) == "99:59");
  BOOST_TEST(mm_ss(1e-300) == "00:00");
  // Frame k of a 100-frame clip at 25 fps, sampled 32 times: index 96 → 3.84 s.
  BOOST_TEST(mm_ss(double(sample_frame_indices(100, 32).back()) / 25.0) == "00:03");
  BOOST_CHECK_THROW(mm_ss(-0.5), MediaError);
  BOOST_CHECK_THROW(mm_ss(std::nan("")), MediaError);
  BOOST_CHECK_THROW(mm_ss(std::numeric_limits<double>::infinity()), MediaError);
}
