// The filter weights must be computed with every product and sum rounded separately, as Pillow's
// C code is (Debian builds it for baseline x86-64, no FMA). -march=native lets GCC fuse a·b + c
// into one FMA, which moves a weight by an ulp and, rarely, its fixed-point value by one.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "media/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "media/media_error.h"

namespace rawflow::media {

namespace {

constexpr int kPillowPrecisionBits = 32 - 8 - 2;  // PRECISION_BITS in Pillow's Resample.c
constexpr double kBicubicSupport = 2.0;

// Keys' cubic convolution kernel with a = −0.5, written as Pillow writes it (same rounding).
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// The fixed-point filter of one pass: output i reads taps [first[i], first[i] + count[i]) of the
// input line with weights[i·stride …].
struct PassFilter {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;
  int stride = 0;
  int precision_bits = 0;
};

// Pillow's precompute_coeffs: centre of output pixel i at (i + 0.5)·scale, support 2·max(scale, 1),
// window rounded to whole input pixels and clipped to the image, weights normalised to sum 1.
std::vector<double> float_weights(int in_size, int out_size, PassFilter& filter) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filter_scale;
  filter.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  filter.first.resize(static_cast<size_t>(out_size));
  filter.count.resize(static_cast<size_t>(out_size));
  // Rounding of the window can add one tap beyond `stride` (PyTorch notes this too); keep room.
  filter.stride += 1;
  std::vector<double> weights(static_cast<size_t>(out_size) * static_cast<size_t>(filter.stride),
                              0.0);
  const double inv_scale = 1.0 / filter_scale;
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    const int n = std::clamp(xmax - xmin, 0, filter.stride);
    double* w = &weights[static_cast<size_t>(i) * static_cast<size_t>(filter.stride)];
    double sum = 0.0;
    for (int x = 0; x < n; ++x) {
      w[x] = bicubic((x + xmin - center + 0.5) * inv_scale);
      sum += w[x];
    }
    if (sum != 0.0) {
      for (int x = 0; x < n; ++x) w[x] /= sum;
    }
    filter.first[static_cast<size_t>(i)] = xmin;
    filter.count[static_cast<size_t>(i)] = n;
  }
  return weights;
}

// Pillow: fixed 22 bits. PyTorch: as many bits as keep the largest weight inside int16.
int precision_bits(const std::vector<double>& weights, ResizeArithmetic arithmetic) {
  if (arithmetic == ResizeArithmetic::Pillow) return kPillowPrecisionBits;
  double w_max = weights.empty() ? 0.0 : weights[0];
  for (double w : weights) w_max = std::max(w_max, w);
  int bits = 0;
  for (; bits < 22; ++bits) {
    const int next = static_cast<int>(0.5 + w_max * static_cast<double>(1 << (bits + 1)));
    if (next >= (1 << 15)) break;
  }
  return bits;
}

PassFilter make_filter(int in_size, int out_size, ResizeArithmetic arithmetic) {
  PassFilter filter;
  const std::vector<double> weights = float_weights(in_size, out_size, filter);
  filter.precision_bits = precision_bits(weights, arithmetic);
  const double one = static_cast<double>(1 << filter.precision_bits);
  filter.weights.resize(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    // Round half away from zero, truncating as the C originals do.
    const double w = weights[i];
    filter.weights[i] =
        w < 0 ? static_cast<int32_t>(-0.5 + w * one) : static_cast<int32_t>(0.5 + w * one);
  }
  return filter;
}

// Normalised weights sum to 1 with |negative lobes| < 0.2, so |acc| < 1.3·255·2^22 < 2^31:
// int32 (Pillow's type) cannot overflow.
inline uint8_t clamp_to_u8(int32_t acc, int bits) {
  return static_cast<uint8_t>(std::clamp(acc >> bits, 0, 255));
}

RgbImage resize_horizontal(const RgbImage& src, int width, const PassFilter& f) {
  RgbImage out{
      width, src.height,
      std::vector<uint8_t>(static_cast<size_t>(width) * static_cast<size_t>(src.height) * 3)};
  const int32_t half = int32_t{1} << (f.precision_bits - 1);
  for (int y = 0; y < src.height; ++y) {
    const uint8_t* in = &src.rgb[static_cast<size_t>(y) * static_cast<size_t>(src.width) * 3];
    uint8_t* o = &out.rgb[static_cast<size_t>(y) * static_cast<size_t>(width) * 3];
    for (int x = 0; x < width; ++x) {
      const int32_t* k = &f.weights[static_cast<size_t>(x) * static_cast<size_t>(f.stride)];
      const uint8_t* p = in + static_cast<size_t>(f.first[static_cast<size_t>(x)]) * 3;
      int32_t r = half, g = half, b = half;
      for (int t = 0; t < f.count[static_cast<size_t>(x)]; ++t) {
        r += p[3 * t + 0] * k[t];
        g += p[3 * t + 1] * k[t];
        b += p[3 * t + 2] * k[t];
      }
      o[3 * x + 0] = clamp_to_u8(r, f.precision_bits);
      o[3 * x + 1] = clamp_to_u8(g, f.precision_bits);
      o[3 * x + 2] = clamp_to_u8(b, f.precision_bits);
    }
  }
  return out;
}

RgbImage resize_vertical(const RgbImage& src, int height, const PassFilter& f) {
  const size_t row_values = static_cast<size_t>(src.width) * 3;
  RgbImage out{src.width, height, std::vector<uint8_t>(row_values * static_cast<size_t>(height))};
  const int32_t half = int32_t{1} << (f.precision_bits - 1);
  std::vector<int32_t> acc(row_values);
  for (int y = 0; y < height; ++y) {
    const int32_t* k = &f.weights[static_cast<size_t>(y) * static_cast<size_t>(f.stride)];
    const int first = f.first[static_cast<size_t>(y)];
    std::fill(acc.begin(), acc.end(), half);
    for (int t = 0; t < f.count[static_cast<size_t>(y)]; ++t) {
      const uint8_t* in = &src.rgb[static_cast<size_t>(first + t) * row_values];
      const int32_t w = k[t];
      for (size_t i = 0; i < row_values; ++i) acc[i] += in[i] * w;
    }
    uint8_t* o = &out.rgb[static_cast<size_t>(y) * row_values];
    for (size_t i = 0; i < row_values; ++i) o[i] = clamp_to_u8(acc[i], f.precision_bits);
  }
  return out;
}

void check_arguments(const RgbImage& src, int width, int height) {
  const std::string what = "resize_bicubic_antialias(" + std::to_string(src.width) + "x" +
                           std::to_string(src.height) + " -> " + std::to_string(width) + "x" +
                           std::to_string(height) + "): ";
  if (src.width <= 0 || src.height <= 0) throw MediaError(what + "source image is empty");
  if (src.rgb.size() != static_cast<size_t>(src.width) * static_cast<size_t>(src.height) * 3) {
    throw MediaError(what + "source holds " + std::to_string(src.rgb.size()) +
                     " bytes, expected width·height·3");
  }
  if (width <= 0 || height <= 0) throw MediaError(what + "target size is not positive");
}

}  // namespace

RgbImage resize_bicubic_antialias(const RgbImage& src, int width, int height,
                                  ResizeArithmetic arithmetic) {
  check_arguments(src, width, height);
  if (width == src.width && height == src.height) return src;
  // Horizontal first, as Pillow and PyTorch do; the order changes the rounding of the uint8 image
  // in between.
  if (width == src.width) {
    return resize_vertical(src, height, make_filter(src.height, height, arithmetic));
  }
  RgbImage horizontal = resize_horizontal(src, width, make_filter(src.width, width, arithmetic));
  if (height == src.height) return horizontal;
  return resize_vertical(horizontal, height, make_filter(src.height, height, arithmetic));
}

}  // namespace rawflow::media
