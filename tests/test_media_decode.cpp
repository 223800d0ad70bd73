#define BOOST_TEST_MODULE test_media_decode
#include <algorithm>
#include <boost/crc.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "media/decode.h"
#include "media/input.h"
#include "media/media_error.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// The sanitizer runtimes' allocator statistics (clang's <sanitizer/allocator_interface.h>; GCC
// ships no such header, the runtime has the function).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#else
#include <malloc.h>
#endif

using namespace rawflow::media;
namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Test media are generated here at test time (never committed).
const fs::path& work_dir() {
  static const fs::path dir = [] {
    const char* root = std::getenv("RAWFLOW_TEST_WORK");
    if (!root || !*root)
      throw std::runtime_error("RAWFLOW_TEST_WORK is not set (run through ctest)");
    fs::path d = fs::path(root) / "media_decode";
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string media_path(const std::string& name) { return (work_dir() / name).string(); }

// Runs the ffmpeg CLI; the test fails loudly if it is missing or fails.
void ffmpeg(const std::string& args) {
  const std::string cmd = "ffmpeg -hide_banner -loglevel error -nostdin -y " + args;
  const int rc = std::system(cmd.c_str());
  BOOST_REQUIRE_MESSAGE(rc == 0, "command failed (" << rc << "): " << cmd);
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  BOOST_REQUIRE(f.good());
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(f.good(), "cannot read " << path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Bytes the process holds in live heap allocations (FFmpeg's included), from the allocator in use.
size_t live_heap_bytes() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

void put_le(std::vector<uint8_t>& b, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// 16-bit PCM WAV written byte by byte, so the test knows exactly what is in it.
void write_wav(const std::string& path, int rate, int channels,
               const std::vector<int16_t>& interleaved) {
  std::vector<uint8_t> b;
  const auto data_bytes = static_cast<uint32_t>(interleaved.size() * 2);
  b.insert(b.end(), {'R', 'I', 'F', 'F'});
  put_le(b, 36 + data_bytes, 4);
  b.insert(b.end(), {'W', 'A', 'V', 'E', 'f', 'm', 't', ' '});
  put_le(b, 16, 4);
  put_le(b, 1, 2);  // PCM
  put_le(b, static_cast<uint32_t>(channels), 2);
  put_le(b, static_cast<uint32_t>(rate), 4);
  put_le(b, static_cast<uint32_t>(rate * channels * 2), 4);
  put_le(b, static_cast<uint32_t>(channels * 2), 2);
  put_le(b, 16, 2);
  b.insert(b.end(), {'d', 'a', 't', 'a'});
  put_le(b, data_bytes, 4);
  for (int16_t s : interleaved) put_le(b, static_cast<uint16_t>(s), 2);
  write_bytes(path, b);
}

int16_t pcm16(double x) { return static_cast<int16_t>(std::lround(x * 32767.0)); }

// Stereo WAV: left = amp_l·sin(2π f t), right = amp_r·sin(2π f t).
void write_stereo_sine(const std::string& path, int rate, int64_t frames, double freq, double amp_l,
                       double amp_r) {
  std::vector<int16_t> pcm;
  pcm.reserve(static_cast<size_t>(frames) * 2);
  for (int64_t i = 0; i < frames; ++i) {
    const double s = std::sin(2 * kPi * freq * static_cast<double>(i) / rate);
    pcm.push_back(pcm16(amp_l * s));
    pcm.push_back(pcm16(amp_r * s));
  }
  write_wav(path, rate, 2, pcm);
}

double rms(const std::vector<float>& x, size_t from, size_t to) {
  double acc = 0;
  for (size_t i = from; i < to; ++i) acc += static_cast<double>(x[i]) * x[i];
  return std::sqrt(acc / static_cast<double>(to - from));
}

// Expects a MediaError whose message names `path`.
template <class F>
void expect_media_error(F&& f, const std::string& path, const std::string& also = "") {
  try {
    f();
    BOOST_ERROR("no MediaError for " << path);
  } catch (const MediaError& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE("MediaError: " << what);
    BOOST_CHECK_MESSAGE(what.find(path) != std::string::npos, "message lacks the path: " << what);
    if (!also.empty())
      BOOST_CHECK_MESSAGE(what.find(also) != std::string::npos,
                          "message lacks '" << also << "': " << what);
  }
}

// Raw RGB24 pixels with a pattern that exercises every channel value range.
std::vector<uint8_t> pattern_rgb(int w, int h, int channels) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * channels));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        px[static_cast<size_t>((y * w + x) * channels + c)] =
            static_cast<uint8_t>((x * 7 + y * 13 + c * 101 + x * y) & 0xff);
  return px;
}

// 2 s at 25 fps; frame i is a flat grey of level 5·i (lossless H.264, with B-frames so that
// decoding reorders and the end of the stream must be flushed out of the decoder).
const std::string& counting_video() {
  static const std::string path = [] {
    const int w = 64, h = 48, n = 50;
    std::vector<uint8_t> raw;
    for (int i = 0; i < n; ++i)
      raw.insert(raw.end(), static_cast<size_t>(w * h), static_cast<uint8_t>(5 * i));
    const std::string raw_path = media_path("counting.gray");
    write_bytes(raw_path, raw);
    const std::string out = media_path("counting_25fps.mp4");
    ffmpeg("-f rawvideo -pix_fmt gray -s 64x48 -framerate 25 -i " + raw_path +
           " -c:v libx264 -qp 0 -preset veryfast -bf 2 -pix_fmt yuv444p " + out);
    return out;
  }();
  return path;
}

}  // namespace

// ---- audio

BOOST_AUTO_TEST_CASE(wav_44100_stereo_gives_exact_16k_length) {
  // 1.5 s + 17 samples at 44.1 kHz: 66167 · 16000 / 44100 = 24006.17 samples at 16 kHz.
  const int64_t in_frames = 66167;
  const std::string path = media_path("sine_44100_stereo.wav");
  write_stereo_sine(path, 44100, in_frames, 1000, 0.5, 0.5);
  const AudioClip clip = decode_audio(path);
  const double exact = static_cast<double>(in_frames) * 16000.0 / 44100.0;
  BOOST_TEST_MESSAGE("44.1 kHz stereo WAV: " << in_frames << " in, " << clip.samples.size()
                                             << " out, exact " << exact);
  // swresample compensates its filter delay and, flushed, emits the input duration rounded to a
  // whole output sample (measured: round to nearest); ±1 sample is what a resampler may
  // legitimately differ by.
  BOOST_CHECK_LE(std::abs(static_cast<double>(clip.samples.size()) - exact), 1.0);
  // 24006 samples → ceil(24006/640) = 38 frames of 40 ms (37.5 exactly: no boundary nearby).
  BOOST_CHECK_EQUAL((clip.samples.size() + 639) / 640, 38u);
  BOOST_CHECK_EQUAL(clip.start_seconds, 0.0);

  // Other fractional parts (.88, .64) and a one-second clip one sample short.
  for (const int64_t n : {int64_t{66180}, int64_t{66160}, int64_t{44099}}) {
    const std::string p = media_path("len_" + std::to_string(n) + ".wav");
    write_stereo_sine(p, 44100, n, 440, 0.1, 0.1);
    const double want = static_cast<double>(n) * 16000.0 / 44100.0;
    const size_t got = decode_audio(p).samples.size();
    BOOST_TEST_MESSAGE(n << " samples at 44.1 kHz → " << got << " (exact " << want << ")");
    BOOST_CHECK_LE(std::abs(static_cast<double>(got) - want), 1.0);
  }
}

BOOST_AUTO_TEST_CASE(aac_48k_m4a_length_is_padded_to_whole_aac_frames) {
  const std::string path = media_path("sine_48k.m4a");
  ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000:duration=1 -c:a aac -b:a 128k " + path);
  const AudioClip clip = decode_audio(path);
  // 48000 input samples. The MP4 edit list removes the encoder's 1024 priming samples, but the
  // tail is padded to a whole 1024-sample AAC frame: 47 frames = 48128 samples = 16042.67 at 16
  // kHz.
  const double expected = std::ceil(48000.0 / 1024) * 1024 * 16000.0 / 48000.0;
  BOOST_TEST_MESSAGE("48 kHz AAC in .m4a: " << clip.samples.size() << " samples at 16 kHz (1 s of"
                                            << " audio = 16000; expected with padding " << expected
                                            << ")");
  BOOST_CHECK_LE(std::abs(static_cast<double>(clip.samples.size()) - expected), 1.0);
  BOOST_CHECK_EQUAL(clip.start_seconds, 0.0);
  // The tone is there at its level (AAC is lossy: 5 % on the RMS of a 0.125-amplitude sine).
  BOOST_CHECK_CLOSE(rms(clip.samples, 1600, 14400), 0.125 / std::sqrt(2.0), 5.0);
}

BOOST_AUTO_TEST_CASE(sine_frequency_and_level_survive_resampling) {
  const std::string path = media_path("sine_1k_44100_mono.wav");
  std::vector<int16_t> pcm;
  for (int i = 0; i < 44100; ++i)
    pcm.push_back(pcm16(0.5 * std::sin(2 * kPi * 1000.0 * i / 44100)));
  write_wav(path, 44100, 1, pcm);
  const AudioClip clip = decode_audio(path);
  BOOST_REQUIRE_GE(clip.samples.size(), 15999u);
  const std::vector<float>& x = clip.samples;
  // Rising zero crossings, located by linear interpolation, between 0.1 s and 0.9 s.
  std::vector<double> crossings;
  for (size_t i = 1600; i < 14400; ++i)
    if (x[i - 1] < 0 && x[i] >= 0)
      crossings.push_back(static_cast<double>(i - 1) + x[i - 1] / (x[i - 1] - x[i]));
  BOOST_REQUIRE_GE(crossings.size(), 700u);
  const double freq =
      16000.0 * static_cast<double>(crossings.size() - 1) / (crossings.back() - crossings.front());
  BOOST_TEST_MESSAGE("1 kHz tone after 44.1 → 16 kHz: " << freq << " Hz");
  // Linear interpolation of a 16-samples-per-period sine places crossings to ~1e-3 sample; over
  // 800 periods that is far below 0.05 Hz.
  BOOST_CHECK_SMALL(freq - 1000.0, 0.05);
  // In the passband the resampler keeps the level (0.1 %) and adds no delay: the output matches
  // the ideal 16 kHz sine sample by sample (max error 2e-3 of full scale, measured ~1e-4).
  BOOST_CHECK_CLOSE(rms(x, 1600, 14400), 0.5 / std::sqrt(2.0), 0.1);
  double max_err = 0;
  for (size_t i = 1600; i < 14400; ++i)
    max_err = std::max(max_err, std::abs(x[i] - 0.5 * std::sin(2 * kPi * 1000.0 *
                                                               static_cast<double>(i) / 16000)));
  BOOST_TEST_MESSAGE("max |resampled - ideal| = " << max_err);
  BOOST_CHECK_LT(max_err, 2e-3);
}

BOOST_AUTO_TEST_CASE(stereo_downmix_is_the_mean_of_the_channels) {
  // At 16 kHz nothing is resampled, so the mix can be checked sample by sample: mono = (L + R) / 2.
  const int64_t n = 8000;
  struct Case {
    const char* name;
    double l, r;
  };
  for (const Case c : {Case{"left_only", 0.5, 0.0}, Case{"right_only", 0.0, 0.5},
                       Case{"both", 0.5, 0.5}, Case{"opposite", 0.5, -0.5}}) {
    const std::string path = media_path(std::string("downmix_") + c.name + ".wav");
    write_stereo_sine(path, 16000, n, 1000, c.l, c.r);
    const AudioClip clip = decode_audio(path);
    BOOST_REQUIRE_EQUAL(clip.samples.size(), static_cast<size_t>(n));
    double max_err = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double s = std::sin(2 * kPi * 1000.0 * static_cast<double>(i) / 16000);
      const double want = (pcm16(c.l * s) + pcm16(c.r * s)) / 2.0 / 32768.0;
      max_err = std::max(max_err, std::abs(clip.samples[static_cast<size_t>(i)] - want));
    }
    BOOST_TEST_MESSAGE("downmix " << c.name << ": RMS " << rms(clip.samples, 0, n) << ", max error "
                                  << max_err);
    BOOST_CHECK_SMALL(max_err, 1e-6);  // float rounding of 0.5·L + 0.5·R
  }
}

BOOST_AUTO_TEST_CASE(stereo_downmix_level_after_resampling) {
  // Left-only content at 44.1 kHz: the mono level is half the left level (-6 dB), to 0.2 %.
  const std::string path = media_path("left_only_44100.wav");
  write_stereo_sine(path, 44100, 44100, 1000, 0.8, 0.0);
  const AudioClip clip = decode_audio(path);
  BOOST_CHECK_CLOSE(rms(clip.samples, 1600, 14400), 0.4 / std::sqrt(2.0), 0.2);
}

// ---- pictures

BOOST_AUTO_TEST_CASE(png_rgb_rgba_grey_decode_pixel_exact) {
  const int w = 37, h = 23;
  struct Case {
    const char* pix_fmt;
    int channels;
  };
  for (const Case c : {Case{"rgb24", 3}, Case{"rgba", 4}, Case{"gray", 1}}) {
    const std::vector<uint8_t> px = pattern_rgb(w, h, c.channels);
    const std::string raw = media_path(std::string("pattern.") + c.pix_fmt);
    const std::string png = media_path(std::string("pattern_") + c.pix_fmt + ".png");
    write_bytes(raw, px);
    ffmpeg("-f rawvideo -pix_fmt " + std::string(c.pix_fmt) + " -s 37x23 -i " + raw + " -pix_fmt " +
           c.pix_fmt + " -frames:v 1 " + png);
    const RgbImage img = decode_image(png);
    BOOST_REQUIRE_EQUAL(img.width, w);
    BOOST_REQUIRE_EQUAL(img.height, h);
    BOOST_REQUIRE_EQUAL(img.rgb.size(), static_cast<size_t>(w * h * 3));
    int mismatches = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          // Alpha dropped (not composited); grey replicated into R, G, B.
          const int src_ch = c.channels == 1 ? 0 : ch;
          const uint8_t want = px[static_cast<size_t>((y * w + x) * c.channels + src_ch)];
          mismatches += img.at(x, y, ch) != want;
        }
    BOOST_CHECK_MESSAGE(mismatches == 0,
                        c.pix_fmt << " PNG: " << mismatches << " channel values differ");
  }
}

BOOST_AUTO_TEST_CASE(jpeg_dims_and_colour) {
  // Odd sizes exercise the 4:2:0 chroma edges; a flat colour checks the full-range BT.601 matrix.
  const std::string path = media_path("flat_321x203.jpg");
  ffmpeg(
      "-f lavfi -i color=c=0x3366CC:s=321x203,format=rgb24 -frames:v 1 -q:v 2 -pix_fmt yuvj420p " +
      path);
  const RgbImage img = decode_image(path);
  BOOST_CHECK_EQUAL(img.width, 321);
  BOOST_CHECK_EQUAL(img.height, 203);
  // FFmpeg's MJPEG encoder leaves an artefact in the partial bottom-right MCU of an odd-sized
  // picture (PIL decodes it 14 levels off too): the colour is checked outside the last MCU row
  // and column (16 px).
  const int want[3] = {0x33, 0x66, 0xCC};
  int worst = 0;
  for (int y = 0; y < img.height - 16; ++y)
    for (int x = 0; x < img.width - 16; ++x)
      for (int ch = 0; ch < 3; ++ch) worst = std::max(worst, std::abs(img.at(x, y, ch) - want[ch]));
  BOOST_TEST_MESSAGE("flat JPEG: worst channel error " << worst);
  // JPEG quantisation and the RGB→YUV→RGB round trip with 8-bit chroma: a few levels.
  BOOST_CHECK_LE(worst, 4);
}

BOOST_AUTO_TEST_CASE(first_frame_of_limited_range_video) {
  // H.264 yuv420p is limited range, BT.601 when unstated.
  const std::string path = media_path("flat_video.mp4");
  ffmpeg("-f lavfi -i color=c=0x3366CC:s=96x64:r=25:d=0.4 -c:v libx264 -crf 1 -pix_fmt yuv420p " +
         path);
  const RgbImage img = decode_image(path);
  BOOST_REQUIRE_EQUAL(img.width, 96);
  BOOST_REQUIRE_EQUAL(img.height, 64);
  const int want[3] = {0x33, 0x66, 0xCC};
  int worst = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int ch = 0; ch < 3; ++ch) worst = std::max(worst, std::abs(img.at(x, y, ch) - want[ch]));
  BOOST_TEST_MESSAGE("flat H.264 frame: worst channel error " << worst);
  // ≤ 3 levels from swscale's fast YUV→RGB (docs/media-decode.md) + ≤ 2 from the encode. Decoded
  // as full range this colour would be 8–11 levels off; with the BT.709 matrix, 6.
  BOOST_CHECK_LE(worst, 5);
}

// ---- video sampling (spec §3.6)

BOOST_AUTO_TEST_CASE(video_frames_sampled_by_count) {
  const std::vector<TimedImage> frames = decode_video_frames(counting_video());
  BOOST_REQUIRE_EQUAL(frames.size(), 32u);
  for (int k = 0; k < 32; ++k) {
    const TimedImage& f = frames[static_cast<size_t>(k)];
    const int64_t want = k * 50 / 32;  // floor(k·F/32), F = 50
    BOOST_CHECK_EQUAL(f.frame_index, want);
    BOOST_CHECK_CLOSE(f.seconds + 1.0, static_cast<double>(want) / 25.0 + 1.0, 1e-9);
    // The picture is that frame: grey level 5·index (lossless; ±1 for the YUV round trip).
    BOOST_CHECK_LE(std::abs(f.image.at(10, 10, 1) - static_cast<int>(5 * want)), 1);
    BOOST_CHECK_EQUAL(f.image.width, 64);
  }
}

BOOST_AUTO_TEST_CASE(video_frames_sampled_by_rate) {
  VideoSampling s;
  s.fps = 2;  // int(50 / 25 · 2) = 4 frames: floor(k·50/4) = 0, 12, 25, 37
  const std::vector<TimedImage> frames = decode_video_frames(counting_video(), s);
  BOOST_REQUIRE_EQUAL(frames.size(), 4u);
  const int64_t want[4] = {0, 12, 25, 37};
  for (int k = 0; k < 4; ++k) {
    BOOST_CHECK_EQUAL(frames[static_cast<size_t>(k)].frame_index, want[k]);
    BOOST_CHECK_LE(
        std::abs(frames[static_cast<size_t>(k)].image.at(3, 3, 0) - static_cast<int>(5 * want[k])),
        1);
  }
  BOOST_CHECK_CLOSE(frames[3].seconds, 37.0 / 25.0, 1e-9);
}

BOOST_AUTO_TEST_CASE(video_with_too_few_frames_is_refused) {
  VideoSampling s;
  s.num_frames = 64;
  expect_media_error([&] { decode_video_frames(counting_video(), s); }, counting_video(), "50");
}

// ---- bad media

BOOST_AUTO_TEST_CASE(missing_empty_and_garbage_files) {
  const std::string missing = media_path("does_not_exist.wav");
  expect_media_error([&] { decode_audio(missing); }, missing, "not found");
  expect_media_error([&] { decode_image(missing); }, missing, "not found");
  expect_media_error([&] { probe_media(missing); }, missing, "not found");

  const std::string empty = media_path("empty.png");
  write_bytes(empty, {});
  expect_media_error([&] { decode_image(empty); }, empty, "empty");
  expect_media_error([&] { decode_audio(empty); }, empty, "empty");

  // Fixed pseudo-random bytes (reproducible; /dev/urandom could occasionally look like a format).
  std::vector<uint8_t> junk(8192);
  uint32_t state = 12345;
  for (uint8_t& b : junk) {
    state = state * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(state >> 24);
  }
  const std::string garbage = media_path("garbage.mp4");
  write_bytes(garbage, junk);
  expect_media_error([&] { decode_image(garbage); }, garbage);
  expect_media_error([&] { decode_audio(garbage); }, garbage);

  // A valid WAV header with no samples: nothing to transcribe.
  const std::string no_samples = media_path("header_only.wav");
  write_wav(no_samples, 16000, 1, {});
  expect_media_error([&] { decode_audio(no_samples); }, no_samples, "no decodable samples");

  const std::string dir = work_dir().string();
  expect_media_error([&] { decode_image(dir); }, dir, "directory");
}

BOOST_AUTO_TEST_CASE(wrong_kind_of_stream) {
  const std::string video_only = counting_video();
  expect_media_error([&] { decode_audio(video_only); }, video_only, "no audio stream");
  const std::string audio_only = media_path("tone_for_image.wav");
  write_stereo_sine(audio_only, 16000, 1600, 440, 0.3, 0.3);
  expect_media_error([&] { decode_image(audio_only); }, audio_only, "no image or video stream");
  expect_media_error([&] { decode_video_frames(audio_only); }, audio_only, "no video stream");
}

namespace {

// A PNG with the given header size whose IDAT holds `rows` real rows (zlib stored blocks), CRCs
// right: what a hostile upload would look like.
std::vector<uint8_t> crafted_png(uint32_t w, uint32_t h, int rows) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto be32 = [](std::vector<uint8_t>& v, uint32_t x) {
    for (int i = 3; i >= 0; --i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
  };
  auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
    be32(png, static_cast<uint32_t>(data.size()));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    boost::crc_32_type crc;
    crc.process_bytes(body.data(), body.size());
    be32(png, crc.checksum());
  };
  std::vector<uint8_t> ihdr;
  be32(ihdr, w);
  be32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, no interlace
  chunk("IHDR", ihdr);
  std::vector<uint8_t> raw;
  for (int r = 0; r < rows; ++r) {
    raw.push_back(0);  // filter type: none
    raw.insert(raw.end(), static_cast<size_t>(w) * 3, 0x80);
  }
  std::vector<uint8_t> z = {0x78, 0x01};
  for (size_t at = 0; at < raw.size() || at == 0;) {
    const size_t n = std::min<size_t>(65535, raw.size() - at);
    z.push_back(at + n == raw.size() ? 1 : 0);
    z.insert(z.end(), {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8),
                       static_cast<uint8_t>(~n), static_cast<uint8_t>(~n >> 8)});
    z.insert(z.end(), raw.begin() + static_cast<long>(at), raw.begin() + static_cast<long>(at + n));
    at += n;
    if (n == 0) break;
  }
  uint32_t a = 1, b = 0;  // Adler-32
  for (uint8_t byte : raw) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  be32(z, (b << 16) | a);
  chunk("IDAT", z);
  chunk("IEND", {});
  return png;
}

// kB from /proc/self/status ("VmHWM", "VmRSS").
long proc_status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(huge_pictures_are_refused) {
  // A real 20000×20 PNG: refused by its side.
  const std::string wide = media_path("wide_20000x20.png");
  ffmpeg("-f lavfi -i color=c=red:s=20000x20 -frames:v 1 " + wide);
  expect_media_error([&] { decode_image(wide); }, wide, "20000x20");
  const MediaInfo info = probe_media(wide);  // describing it is fine
  BOOST_REQUIRE_EQUAL(info.streams.size(), 1u);
  BOOST_CHECK_EQUAL(info.streams[0].width, 20000);

  // Crafted headers: 100000² (1e10 pixels, beyond FFmpeg's own limit) and 20000×13000 (2.6e8
  // pixels: under 2^28, so only the side limit stops it; decoded it would take 780 MB).
  const std::string giant = media_path("crafted_100000x100000.png");
  write_bytes(giant, crafted_png(100000, 100000, 0));
  expect_media_error([&] { decode_image(giant); }, giant);
  const std::string tall = media_path("crafted_20000x13000.png");
  write_bytes(tall, crafted_png(20000, 13000, 3));
  // Nothing that size may be allocated: the peak RSS (reset through clear_refs) must stay far
  // below the 780 MB of the picture.
  {
    std::ofstream reset("/proc/self/clear_refs");
    reset << "5";
  }
  const long rss_before = proc_status_kb("VmRSS");
  expect_media_error([&] { decode_image(tall); }, tall, "20000x13000");
  const long peak = proc_status_kb("VmHWM");
  BOOST_TEST_MESSAGE("crafted 20000x13000 PNG: peak RSS " << peak << " kB, before " << rss_before
                                                          << " kB");
  BOOST_REQUIRE_GT(rss_before, 0);
  BOOST_CHECK_LT(peak - rss_before, 200 * 1024);
}

BOOST_AUTO_TEST_CASE(a_lower_pixel_limit_is_obeyed_by_pictures_and_video) {
  // 400×300 = 120000 pixels: decoded under the default, refused under a limit of 100000 — a PNG
  // (size learnt by the decoder) and an H.264 stream (size stated by the container, refused at
  // open) alike.
  const std::string png = media_path("limit_400x300.png");
  ffmpeg("-f lavfi -i color=c=blue:s=400x300 -frames:v 1 " + png);
  BOOST_CHECK_EQUAL(decode_image(png).width, 400);
  BOOST_CHECK_EQUAL(decode_image(png, 120000).width, 400);
  expect_media_error([&] { decode_image(png, 100000); }, png, "more than 100000 pixels");
  const std::string video = media_path("limit_400x300.mp4");
  ffmpeg("-f lavfi -i testsrc=s=400x300:r=25:d=0.4 -c:v libx264 -preset veryfast " + video);
  BOOST_CHECK_EQUAL(decode_video_frames(video, {.num_frames = 2}).size(), 2u);
  expect_media_error([&] { decode_video_frames(video, {.num_frames = 2}, 100000); }, video,
                     "more than 100000 pixels");
  InputOptions o;
  o.max_picture_pixels = 100000;
  expect_media_error([&] { MediaInput in(video, o); }, video, "400x300");
}

// ---- MediaInput on a file

namespace {

// 2 s of 25 fps H.264 + a 44.1 kHz stereo AAC tone, interleaved as a camera file would be.
const std::string& av_file() {
  static const std::string path = [] {
    const std::string out = media_path("av_2s.mp4");
    ffmpeg(
        "-f lavfi -i testsrc=s=160x120:r=25:d=2 -f lavfi -i "
        "sine=frequency=300:sample_rate=44100:duration=2 -ac 2 -c:v libx264 -preset veryfast "
        "-c:a aac -shortest " +
        out);
    return out;
  }();
  return path;
}

}  // namespace

BOOST_AUTO_TEST_CASE(media_input_chunks_concatenate_to_decode_audio) {
  const AudioClip whole = decode_audio(av_file());
  MediaInput in(av_file());
  BOOST_REQUIRE(in.has_video());
  BOOST_REQUIRE(in.has_audio());
  std::vector<float> joined;
  int video = 0, chunks = 0;
  double last_video_pts = -1e9, last_audio_pts = -1e9, first_audio_pts = 0;
  double worst_pts_drift = 0;
  bool ended = false;
  while (auto ev = in.next()) {
    BOOST_REQUIRE(!ended);  // nothing after the EndOfStream
    if (auto* f = std::get_if<VideoFrame>(&*ev)) {
      BOOST_CHECK_GT(f->pts_s, last_video_pts);
      BOOST_CHECK_EQUAL(f->frame_index, video);
      BOOST_CHECK_EQUAL(f->image.width, 160);
      last_video_pts = f->pts_s;
      ++video;
    } else if (auto* c = std::get_if<AudioChunk>(&*ev)) {
      BOOST_CHECK_GT(c->pts_s, last_audio_pts);
      BOOST_CHECK_EQUAL(c->first_sample, static_cast<int64_t>(joined.size()));
      if (chunks == 0) first_audio_pts = c->pts_s;
      // pts agrees with the running sample index (a file has no gaps).
      worst_pts_drift = std::max(
          worst_pts_drift,
          std::abs(c->pts_s - (first_audio_pts + static_cast<double>(c->first_sample) / 16000)));
      last_audio_pts = c->pts_s;
      joined.insert(joined.end(), c->samples.begin(), c->samples.end());
      ++chunks;
    } else {
      const auto& end = std::get<EndOfStream>(*ev);
      BOOST_CHECK(end.reason == EndReason::EndOfInput);
      ended = true;
    }
  }
  BOOST_CHECK(ended);
  BOOST_CHECK(!in.next());
  BOOST_TEST_MESSAGE("MediaInput: " << video << " frames, " << chunks << " audio chunks, "
                                    << joined.size() << " samples, worst pts drift "
                                    << worst_pts_drift * 16000 << " samples");
  BOOST_CHECK_EQUAL(video, 50);
  BOOST_CHECK_EQUAL(in.video_frames_decoded(), 50);
  BOOST_CHECK(joined == whole.samples);  // bit-identical, whatever video was interleaved
  BOOST_CHECK_EQUAL(first_audio_pts, whole.start_seconds);
  // Resampler delay is reported in whole output samples: the pts may lag by up to one.
  BOOST_CHECK_LE(worst_pts_drift * 16000, 1.0 + 1e-6);
}

// How MediaInput ended `path` (want: video, audio).
EndOfStream ending_of(const std::string& path, bool video, bool audio) {
  InputOptions o;
  o.want_video = video;
  o.want_audio = audio;
  MediaInput in(path, o);
  while (auto ev = in.next())
    if (auto* end = std::get_if<EndOfStream>(&*ev)) return *end;
  BOOST_FAIL("no EndOfStream");
  return {};
}

BOOST_AUTO_TEST_CASE(an_mp4_cut_short_is_an_error_not_an_end) {
  // A faststart MP4 (index first) copied in half: FFmpeg only logs "partial file".
  const std::string whole = media_path("faststart.mp4"), cut = media_path("faststart-cut.mp4");
  ffmpeg(
      "-f lavfi -i testsrc2=size=160x120:rate=10:duration=6 -f lavfi -i sine=duration=6 "
      "-c:v libx264 -c:a aac -movflags +faststart " +
      whole);
  const auto size = fs::file_size(whole);
  fs::copy_file(whole, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, size / 2);
  for (const auto& [video, audio] : {std::pair{true, true}, {true, false}, {false, true}}) {
    const EndOfStream end = ending_of(cut, video, audio);
    BOOST_TEST((end.reason == EndReason::Error), video << audio);
    BOOST_TEST(end.message.find(cut + ": the file is cut short: its ") == 0u, end.message);
    BOOST_TEST(end.message.find("of the 6.") != std::string::npos, end.message);
    BOOST_TEST((ending_of(whole, video, audio).reason == EndReason::EndOfInput), video << audio);
  }
  // A track shorter than the file is not a cut: 6 s of video with 2 s of audio, audio only.
  const std::string short_audio = media_path("short-audio.mp4");
  ffmpeg(
      "-f lavfi -i testsrc2=size=160x120:rate=10:duration=6 -f lavfi -i sine=duration=2 "
      "-c:v libx264 -c:a aac " +
      short_audio);
  BOOST_TEST((ending_of(short_audio, false, true).reason == EndReason::EndOfInput));
  BOOST_TEST((ending_of(short_audio, true, true).reason == EndReason::EndOfInput));
}

// A damaged AAC frame can name channel elements of any type and id; FFmpeg's decoder allocates a
// 535 KiB element for each new one and keeps it until it is closed — up to 64 (34 MiB) per stream.
// A live input is never closed, so each corrupt burst on a camera raised rawflow's RSS for good
// (docs/soak.md). MediaInput replaces the audio decoder after an error: what a corrupt stretch
// leaves behind is measured here against the same file undamaged, both held open at their end.
BOOST_AUTO_TEST_CASE(corrupt_aac_leaves_no_decoder_state_behind) {
  const std::string clean = media_path("tone_10s.aac");
  ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=48000:duration=10 -c:a aac -b:a 96k -f adts " +
         clean);
  std::vector<uint8_t> bytes = read_bytes(clean);
  // ADTS frames: 0xFFF sync, the frame's length in 13 bits from byte 3, a 7-byte header (no CRC).
  // Frames 100-299 keep their headers and get a third of their payload bytes randomised, as
  // tests/rtsp/corrupting_proxy.py does to RTP payloads.
  std::mt19937 rng(1);
  size_t pos = 0;
  int frame = 0;
  while (pos + 7 <= bytes.size()) {
    BOOST_REQUIRE(bytes[pos] == 0xFF && (bytes[pos + 1] & 0xF6) == 0xF0);
    const size_t len = (static_cast<size_t>(bytes[pos + 3] & 3) << 11) |
                       (static_cast<size_t>(bytes[pos + 4]) << 3) | (bytes[pos + 5] >> 5);
    BOOST_REQUIRE(len > 7 && pos + len <= bytes.size());
    if (frame >= 100 && frame < 300)
      for (size_t i = pos + 7; i < pos + len; ++i)
        if (rng() % 3 == 0) bytes[i] = static_cast<uint8_t>(rng());
    pos += len;
    ++frame;
  }
  BOOST_REQUIRE_GT(frame, 400);
  const std::string corrupt = media_path("tone_10s_corrupt.aac");
  write_bytes(corrupt, bytes);

  struct Run {
    int64_t held = 0;  // live heap after the end of stream, the input still open
    int64_t samples = 0;
    int64_t errors = 0;
  };
  auto run = [](const std::string& path) {
    const auto before = static_cast<int64_t>(live_heap_bytes());
    MediaInput in(path);
    Run r;
    while (auto e = in.next())
      if (const auto* a = std::get_if<AudioChunk>(&*e))
        r.samples += static_cast<int64_t>(a->samples.size());
    r.held = static_cast<int64_t>(live_heap_bytes()) - before;
    r.errors = in.decode_errors();
    return r;
  };
  const Run ok = run(clean);
  const Run bad = run(corrupt);
  BOOST_TEST_MESSAGE("AAC, 10 s: clean holds "
                     << ok.held << " B at its end; with 200 damaged frames " << bad.held << " B, "
                     << bad.errors << " decode errors, " << bad.samples << " samples (clean "
                     << ok.samples << ")");
  BOOST_CHECK_EQUAL(ok.errors, 0);
  BOOST_REQUIRE_GT(bad.errors, 0);
  // Decoding went on after the damage: the undamaged frames after it are all there.
  BOOST_CHECK_GE(bad.samples, ok.samples * 55 / 100);
  // Less than one channel element (535 KiB) more than the clean run: what is held is one decoder.
  BOOST_CHECK_LT(bad.held - ok.held, 256 * 1024);
}

BOOST_AUTO_TEST_CASE(media_input_min_interval_and_interrupt) {
  InputOptions o;
  o.want_audio = false;
  o.video_min_interval_s = 0.5;
  MediaInput in(counting_video(), o);
  std::vector<double> pts;
  while (auto ev = in.next())
    if (auto* f = std::get_if<VideoFrame>(&*ev)) pts.push_back(f->pts_s);
  // 25 fps, at least 0.5 s apart: frames 0, 13, 26, 39 (0.52 s apart).
  BOOST_REQUIRE_EQUAL(pts.size(), 4u);
  BOOST_CHECK_CLOSE(pts[1] - pts[0] + 1.0, 1.52, 1e-6);
  BOOST_CHECK_EQUAL(in.video_frames_decoded(), 50);

  MediaInput stopped(counting_video());
  stopped.interrupt();
  std::optional<EndOfStream> end;
  while (auto ev = stopped.next())
    if (auto* e = std::get_if<EndOfStream>(&*ev)) end = *e;
  BOOST_REQUIRE(end);
  BOOST_CHECK(end->reason == EndReason::Interrupted);
  BOOST_CHECK(end->message.find(counting_video()) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(probe_describes_streams) {
  const MediaInfo info = probe_media(av_file());
  BOOST_TEST_MESSAGE(info.describe());
  BOOST_REQUIRE_EQUAL(info.streams.size(), 2u);
  BOOST_CHECK(info.duration_s && std::abs(*info.duration_s - 2.0) < 0.1);
  const StreamInfo& v = info.streams[0].kind == "video" ? info.streams[0] : info.streams[1];
  const StreamInfo& a = info.streams[0].kind == "audio" ? info.streams[0] : info.streams[1];
  BOOST_CHECK_EQUAL(v.codec, "h264");
  BOOST_CHECK_EQUAL(v.width, 160);
  BOOST_CHECK_EQUAL(v.height, 120);
  BOOST_CHECK_CLOSE(v.fps, 25.0, 1e-9);
  BOOST_CHECK_EQUAL(a.codec, "aac");
  BOOST_CHECK_EQUAL(a.sample_rate, 44100);
  BOOST_CHECK_EQUAL(a.channels, 2);
  const std::string text = info.describe();
  BOOST_CHECK(text.find("160x120") != std::string::npos);
  BOOST_CHECK(text.find("44100 Hz 2 ch") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(redacts_credentials) {
  BOOST_CHECK_EQUAL(redact_url("rtsp://admin:secret@10.0.0.5:554/stream1"),
                    "rtsp://***@10.0.0.5:554/stream1");
  BOOST_CHECK_EQUAL(redact_url("rtsp://10.0.0.5/a@b"), "rtsp://10.0.0.5/a@b");
  BOOST_CHECK_EQUAL(redact_url("/tmp/a@b.wav"), "/tmp/a@b.wav");
}
