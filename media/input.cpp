// MediaInput: libavformat demuxing, libavcodec decoding, swscale to RGB24 and swresample to 16 kHz
// mono float, guarded by an AVIOInterruptCB watchdog. Why each choice: docs/media-decode.md.
#include "media/input.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "media/media_error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

namespace rawflow::media {

namespace {

using Clock = std::chrono::steady_clock;

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

bool has_scheme(const std::string& url) {
  return url.find("://") != std::string::npos || url.rfind("pipe:", 0) == 0;
}

bool is_rtsp(const std::string& url) {
  return url.rfind("rtsp://", 0) == 0 || url.rfind("rtsps://", 0) == 0;
}

// ---- FFmpeg's log messages, kept per input so that errors can say what FFmpeg said
//
// FFmpeg reports the reason for most failures ("Invalid PNG signature", "Picture size ... is
// invalid") only through av_log. One process-wide callback forwards everything to FFmpeg's default
// printer unchanged and also keeps the last error-level line of contexts that belong to a live
// MediaInput (found through the contexts' opaque pointer, checked against a registry so that
// contexts of other FFmpeg users in the process are never misread).

struct ContextNotes {
  std::mutex mutex;
  std::string last_error;
  std::string refused_picture;                     // set by checked_get_buffer
  int64_t max_picture_pixels = kMaxPicturePixels;  // InputOptions', for checked_get_buffer
};

std::mutex g_notes_mutex;
std::unordered_set<const ContextNotes*>& live_notes() {
  static std::unordered_set<const ContextNotes*> sinks;
  return sinks;
}

ContextNotes* sink_of(void* avcl) {
  if (!avcl) return nullptr;
  const AVClass* cls = *static_cast<const AVClass**>(avcl);
  void* opaque = nullptr;
  if (cls == avcodec_get_class())
    opaque = static_cast<AVCodecContext*>(avcl)->opaque;
  else if (cls == avformat_get_class())
    opaque = static_cast<AVFormatContext*>(avcl)->opaque;
  return static_cast<ContextNotes*>(opaque);
}

void log_callback(void* avcl, int level, const char* fmt, va_list vl) {
  if (level <= AV_LOG_ERROR) {
    if (ContextNotes* sink = sink_of(avcl)) {
      char line[512];
      va_list copy;
      va_copy(copy, vl);
      std::vsnprintf(line, sizeof line, fmt, copy);
      va_end(copy);
      std::string text = line;
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      std::lock_guard<std::mutex> registry(g_notes_mutex);
      if (live_notes().count(sink) && !text.empty()) {
        std::lock_guard<std::mutex> lock(sink->mutex);
        sink->last_error = text;
      }
    }
  }
  av_log_default_callback(avcl, level, fmt, vl);
}

void install_log_callback() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(log_callback); });
}

// ---- the watchdog

enum class Fired { None, Stalled, Interrupted };

// FFmpeg polls this during every blocking I/O call. Once it has fired it keeps firing, so a stalled
// input can never block again (not even while closing).
struct Watchdog {
  std::atomic<int64_t> deadline_ns{0};
  std::atomic<Fired> fired{Fired::None};
  std::atomic<bool> interrupt_requested{false};
  const std::atomic<bool>* cancel = nullptr;

  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }
  void arm(double seconds) { deadline_ns = now_ns() + static_cast<int64_t>(seconds * 1e9); }
  bool cancelled() const { return interrupt_requested || (cancel && cancel->load()); }

  static int callback(void* opaque) {
    auto* w = static_cast<Watchdog*>(opaque);
    if (w->fired != Fired::None) return 1;
    if (w->cancelled()) {
      w->fired = Fired::Interrupted;
      return 1;
    }
    if (now_ns() > w->deadline_ns) {
      w->fired = Fired::Stalled;
      return 1;
    }
    return 0;
  }
};

// ---- small helpers

const char* media_kind(AVMediaType t) {
  switch (t) {
    case AVMEDIA_TYPE_VIDEO:
      return "video";
    case AVMEDIA_TYPE_AUDIO:
      return "audio";
    case AVMEDIA_TYPE_SUBTITLE:
      return "subtitle";
    case AVMEDIA_TYPE_DATA:
      return "data";
    case AVMEDIA_TYPE_ATTACHMENT:
      return "attachment";
    default:
      return "unknown";
  }
}

double rational_or_zero(AVRational r) { return (r.num > 0 && r.den > 0) ? av_q2d(r) : 0.0; }

std::string picture_limit_violation(int64_t w, int64_t h, int64_t max_pixels) {
  if (w <= kMaxPictureSide && h <= kMaxPictureSide && w * h <= max_pixels) return {};
  return "picture is " + std::to_string(w) + "x" + std::to_string(h) +
         " pixels; refusing sides above " + std::to_string(kMaxPictureSide) + " px or more than " +
         std::to_string(max_pixels) + " pixels";
}

// FFmpeg's own pixel check (its decoders and probe) counts the stride-aligned width (rounded up to
// 64 here), so at rawflow's exact limit it would refuse pictures rawflow accepts, and with a vaguer
// message. It gets twice the limit, as a backstop; the exact check is ours, before any allocation.
int64_t ffmpeg_max_pixels(int64_t limit) { return 2 * limit; }

// Refuses oversized pictures before the decoder allocates them: pictures whose size only the
// decoder learns (single-image files) and frames that grow mid-stream.
int checked_get_buffer(AVCodecContext* c, AVFrame* f, int flags) {
  if (c->codec_type == AVMEDIA_TYPE_VIDEO) {
    auto* notes = static_cast<ContextNotes*>(c->opaque);
    std::string refused = picture_limit_violation(f->width, f->height, notes->max_picture_pixels);
    if (!refused.empty()) {
      std::lock_guard<std::mutex> lock(notes->mutex);
      notes->refused_picture = std::move(refused);
      return AVERROR(ERANGE);
    }
  }
  return avcodec_default_get_buffer2(c, f, flags);
}

// Demuxers of one still picture (png_pipe, jpeg_pipe, ..., image2). Their header states no size,
// so FFmpeg's probe would decode the picture, allocating it whatever its size.
bool is_single_picture_format(const AVInputFormat* f) {
  const std::string name = f->name ? f->name : "";
  const std::string pipe = "_pipe";
  return name == "image2" || (name.size() > pipe.size() &&
                              name.compare(name.size() - pipe.size(), pipe.size(), pipe) == 0);
}

MediaInfo describe_format(const AVFormatContext* ic, const std::string& url) {
  MediaInfo info;
  info.url = url;
  info.format = ic->iformat->name ? ic->iformat->name : "";
  info.format_long = ic->iformat->long_name ? ic->iformat->long_name : "";
  if (ic->duration != AV_NOPTS_VALUE && ic->duration > 0)
    info.duration_s = static_cast<double>(ic->duration) / AV_TIME_BASE;
  if (ic->start_time != AV_NOPTS_VALUE)
    info.start_s = static_cast<double>(ic->start_time) / AV_TIME_BASE;
  info.bit_rate = ic->bit_rate;
  for (unsigned i = 0; i < ic->nb_streams; ++i) {
    const AVStream* st = ic->streams[i];
    const AVCodecParameters* par = st->codecpar;
    StreamInfo s;
    s.index = static_cast<int>(i);
    s.kind = media_kind(par->codec_type);
    s.codec = avcodec_get_name(par->codec_id);
    s.attached_picture = (st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
      s.width = par->width;
      s.height = par->height;
      s.fps = rational_or_zero(st->avg_frame_rate);
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
      s.sample_rate = par->sample_rate;
      s.channels = par->ch_layout.nb_channels;
      char layout[128] = {};
      if (av_channel_layout_describe(&par->ch_layout, layout, sizeof layout) > 0)
        s.channel_layout = layout;
    }
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
      s.duration_s = static_cast<double>(st->duration) * av_q2d(st->time_base);
    s.frames = st->nb_frames;
    info.streams.push_back(std::move(s));
  }
  return info;
}

// What swscale should be told about a decoded picture. The yuvj* formats are full-range YUV
// (JPEG); swscale wants them as plain yuv* plus a range flag.
struct SwsSource {
  AVPixelFormat format;
  bool full_range;
  bool yuv;
};

SwsSource sws_source(const AVFrame* f) {
  auto fmt = static_cast<AVPixelFormat>(f->format);
  switch (fmt) {
    case AV_PIX_FMT_YUVJ420P:
      return {AV_PIX_FMT_YUV420P, true, true};
    case AV_PIX_FMT_YUVJ422P:
      return {AV_PIX_FMT_YUV422P, true, true};
    case AV_PIX_FMT_YUVJ444P:
      return {AV_PIX_FMT_YUV444P, true, true};
    case AV_PIX_FMT_YUVJ440P:
      return {AV_PIX_FMT_YUV440P, true, true};
    case AV_PIX_FMT_YUVJ411P:
      return {AV_PIX_FMT_YUV411P, true, true};
    default:
      break;
  }
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(fmt);
  // RGB, palette and grey pictures are full range (PIL's convert("RGB") replicates grey as is).
  const bool yuv =
      d && !(d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) && d->nb_components >= 3;
  return {fmt, !yuv || f->color_range == AVCOL_RANGE_JPEG, yuv};
}

// Exact: ACCURATE_RND + BITEXACT give correctly rounded pixels, the same on every CPU, RGB/grey/
// palette copied bit for bit, and chroma interpolated (FULL_CHR_H_*) — but in plain C, ~150-300 ms
// for a 1080p frame here. Fast: swscale's SIMD YUV→RGB (~7-20 ms), which replicates chroma and is
// off by up to 3 levels (mean -0.8) from exact BT.601 — and is exactly what PyAV/torchcodec, the
// HF video loaders, use. Stills and non-YUV pictures are exact; video frames are fast.
constexpr int kExactSwsFlags =
    SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP;
constexpr int kFastSwsFlags = SWS_BILINEAR;

}  // namespace

const char* end_reason_name(EndReason r) {
  switch (r) {
    case EndReason::EndOfInput:
      return "end of input";
    case EndReason::Stalled:
      return "stalled";
    case EndReason::Interrupted:
      return "interrupted";
    case EndReason::Error:
      return "error";
  }
  return "?";
}

std::string redact_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t host_start = scheme + 3;
  const size_t path_start = url.find('/', host_start);
  const size_t at = url.rfind('@', path_start == std::string::npos ? url.size() : path_start);
  if (at == std::string::npos || at < host_start) return url;
  return url.substr(0, host_start) + "***@" + url.substr(at + 1);
}

std::string MediaInfo::describe() const {
  auto fmt_seconds = [](std::optional<double> s) {
    char b[32];
    if (!s) return std::string("duration unknown");
    std::snprintf(b, sizeof b, "%.3f s", *s);
    return std::string(b);
  };
  std::string out = url + ": " + format;
  if (!format_long.empty()) out += " (" + format_long + ")";
  out += ", " + fmt_seconds(duration_s);
  if (bit_rate > 0) out += ", " + std::to_string(bit_rate / 1000) + " kb/s";
  out += "\n";
  for (const StreamInfo& s : streams) {
    out += "  #" + std::to_string(s.index) + " " + s.kind + " " + s.codec;
    if (s.kind == "video") {
      char b[64];
      std::snprintf(b, sizeof b, " %dx%d", s.width, s.height);
      out += b;
      if (s.fps > 0) {
        std::snprintf(b, sizeof b, " %.3g fps", s.fps);
        out += b;
      }
      if (s.attached_picture) out += " (attached picture)";
    } else if (s.kind == "audio") {
      out += " " + std::to_string(s.sample_rate) + " Hz " + std::to_string(s.channels) + " ch";
      if (!s.channel_layout.empty()) out += " (" + s.channel_layout + ")";
    }
    if (s.frames > 0) out += ", " + std::to_string(s.frames) + " frames";
    if (s.duration_s) out += ", " + fmt_seconds(s.duration_s);
    out += "\n";
  }
  return out;
}

// ---- MediaInput's state

struct MediaInput::State {
  std::string url;    // as given
  std::string shown;  // as printed (credentials redacted)
  InputOptions options;

  ContextNotes log;
  Watchdog watchdog;
  AVFormatContext* ic = nullptr;
  AVCodecContext* video_dec = nullptr;
  AVCodecContext* audio_dec = nullptr;
  int video_stream = -1;
  int audio_stream = -1;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  MediaInfo info;

  // Video conversion.
  bool single_picture = false;  // a still image file (exact conversion)
  SwsContext* sws = nullptr;
  AVPixelFormat sws_format = AV_PIX_FMT_NONE;
  int sws_colorspace = -1;
  bool sws_full_range = false;
  int64_t video_frames = 0;
  std::optional<double> last_converted_pts;

  // Audio conversion: the resampler is rebuilt whenever the decoded format changes.
  SwrContext* swr = nullptr;
  int swr_in_format = -1;
  int swr_in_rate = 0;
  AVChannelLayout swr_in_layout{};
  int64_t audio_samples_out = 0;
  std::optional<double> next_audio_pts;

  int64_t decode_errors = 0;
  std::string last_decode_error;

  // How far the packets of the streams read reached (seconds from each stream's start), for the
  // truncation check at the end.
  double video_reached_s = 0, audio_reached_s = 0;

  std::deque<MediaEvent> pending;
  Clock::time_point last_packet_at = Clock::now();
  Clock::time_point opened_at = Clock::now();  // avformat_open_input returned
  bool finished = false;  // the EndOfStream is in `pending` or already returned
  bool last_read_again = false;

  ~State();
  std::string ffmpeg_said();
  [[noreturn]] void fail(const std::string& reason);
  void check_local_file();
  void open();
  void open_decoder(int stream, AVCodecContext*& dec);
  void reopen_decoder(int stream, AVCodecContext*& dec);
  void check_stream_count();
  void check_audio_format(const AVCodecParameters* par);
  int choose_stream(AVMediaType type);

  void read_one();
  void note_reach(const AVPacket* p);
  std::string truncation() const;
  void finish(EndReason reason, std::string message);
  void decode(AVCodecContext* dec, const AVPacket* pkt);
  void note_decode_error(int err);
  void on_video_frame(const AVFrame* f);
  RgbImage to_rgb(const AVFrame* f);
  void on_audio_frame(const AVFrame* f);
  void configure_resampler(const AVFrame* f);
  void flush_resampler();
  void emit_audio(std::vector<float> samples, double pts_s);
};

MediaInput::State::~State() {
  {
    std::lock_guard<std::mutex> lock(g_notes_mutex);
    live_notes().erase(&log);
  }
  // Closing an RTSP session sends TEARDOWN: bound it like any other wait.
  if (watchdog.fired == Fired::None) watchdog.arm(1.0);
  avcodec_free_context(&video_dec);
  avcodec_free_context(&audio_dec);
  avformat_close_input(&ic);  // also frees a context whose open failed (ic is then null)
  av_packet_free(&packet);
  av_frame_free(&frame);
  sws_freeContext(sws);
  swr_free(&swr);
  av_channel_layout_uninit(&swr_in_layout);
}

std::string MediaInput::State::ffmpeg_said() {
  std::lock_guard<std::mutex> lock(log.mutex);
  return log.last_error.empty() ? std::string() : " (ffmpeg: " + log.last_error + ")";
}

void MediaInput::State::fail(const std::string& reason) { throw MediaError(shown + ": " + reason); }

void MediaInput::State::check_local_file() {
  if (has_scheme(url)) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(url, ec);
  if (!fs::exists(st)) fail("not found");
  if (fs::is_directory(st)) fail("is a directory, not a media file");
  if (fs::is_regular_file(st) && fs::file_size(url, ec) == 0 && !ec) fail("is empty (0 bytes)");
}

int MediaInput::State::choose_stream(AVMediaType type) {
  const AVCodec* codec = nullptr;
  int best = av_find_best_stream(ic, type, -1, -1, &codec, 0);
  if (best == AVERROR_DECODER_NOT_FOUND) {
    const int any = av_find_best_stream(ic, type, -1, -1, nullptr, 0);
    fail(std::string("no decoder for its ") + media_kind(type) + " codec " +
         avcodec_get_name(ic->streams[any]->codecpar->codec_id));
  }
  // Cover art is a still picture attached to an audio file, not the video of the input.
  if (best >= 0 && (ic->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
    best = -1;
    for (unsigned i = 0; i < ic->nb_streams; ++i) {
      const AVStream* st = ic->streams[i];
      if (st->codecpar->codec_type == type && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC) &&
          avcodec_find_decoder(st->codecpar->codec_id)) {
        best = static_cast<int>(i);
        break;
      }
    }
  }
  return best < 0 ? -1 : best;
}

void MediaInput::State::check_stream_count() {
  if (ic->nb_streams > static_cast<unsigned>(kMaxStreams))
    fail("the input has " + std::to_string(ic->nb_streams) + " streams; more than " +
         std::to_string(kMaxStreams) + " are refused (a camera or a recording has a handful)");
}

namespace {

// Why audio of `rate` Hz and `channels` channels is refused ("" when it is not), the bounds of
// media/input.h; `stated` says how: "its audio stream states" (at open), "its audio changed to"
// (a format change mid-stream).
std::string audio_format_problem(int rate, int channels, const std::string& stated) {
  if (rate < kMinAudioRate || rate > kMaxAudioRate)
    return stated + " a sample rate of " + std::to_string(rate) + " Hz; rates from " +
           std::to_string(kMinAudioRate) + " to " + std::to_string(kMaxAudioRate) +
           " Hz are accepted";
  if (channels > kMaxAudioChannels)
    return stated + " " + std::to_string(channels) + " channels; at most " +
           std::to_string(kMaxAudioChannels) + " are accepted";
  return "";
}

}  // namespace

void MediaInput::State::check_audio_format(const AVCodecParameters* par) {
  const std::string problem =
      audio_format_problem(par->sample_rate, par->ch_layout.nb_channels, "its audio stream states");
  if (!problem.empty()) fail(problem);
}

void MediaInput::State::open_decoder(int stream, AVCodecContext*& dec) {
  const AVStream* st = ic->streams[stream];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) fail(std::string("no decoder for codec ") + avcodec_get_name(st->codecpar->codec_id));
  dec = avcodec_alloc_context3(codec);
  if (!dec) fail("out of memory allocating a decoder");
  if (avcodec_parameters_to_context(dec, st->codecpar) < 0) fail("cannot configure the decoder");
  dec->pkt_timebase = st->time_base;
  dec->opaque = &log;
  dec->max_pixels = ffmpeg_max_pixels(options.max_picture_pixels);
  dec->get_buffer2 = checked_get_buffer;
#if LIBAVCODEC_VERSION_MAJOR < 60
  // checked_get_buffer is thread-safe; FFmpeg < 6 warns about frame threads unless told so.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  dec->thread_safe_callbacks = 1;
#pragma GCC diagnostic pop
#endif
  // Frame threads add latency, which a live source must not have; files decode faster with them.
  dec->thread_count = has_scheme(url) ? 1 : 0;
  dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  const int r = avcodec_open2(dec, codec, nullptr);
  if (r < 0)
    fail(std::string("cannot open the ") + codec->name + " decoder: " + av_error_text(r) +
         ffmpeg_said());
}

void MediaInput::State::open() {
  install_log_callback();
  {
    std::lock_guard<std::mutex> lock(g_notes_mutex);
    live_notes().insert(&log);
  }
  check_local_file();
  watchdog.cancel = options.cancel;
  log.max_picture_pixels = options.max_picture_pixels;

  ic = avformat_alloc_context();
  if (!ic) fail("out of memory allocating the demuxer");
  ic->opaque = &log;
  ic->interrupt_callback = {&Watchdog::callback, &watchdog};

  AVDictionary* opts = nullptr;
  if (is_rtsp(url)) {
    av_dict_set(&opts, "rtsp_transport", options.rtsp_transport.c_str(), 0);
    if (options.want_video != options.want_audio)
      av_dict_set(&opts, "allowed_media_types", options.want_video ? "video" : "audio", 0);
  }
  watchdog.arm(options.open_timeout_s);
  int r = avformat_open_input(&ic, url.c_str(), nullptr, &opts);
  av_dict_free(&opts);
  auto open_failure = [&](const char* what) {
    if (watchdog.fired == Fired::Interrupted) fail(std::string(what) + ": interrupted");
    if (watchdog.fired == Fired::Stalled) {
      char b[64];
      std::snprintf(b, sizeof b, "no answer within the open budget of %.3g s",
                    options.open_timeout_s);
      fail(std::string(what) + ": " + b);
    }
    fail(std::string(what) + ": " + av_error_text(r) + ffmpeg_said());
  };
  // On failure avformat_open_input freed ic and set it to null; on success the State owns it.
  if (r < 0 || watchdog.fired != Fired::None) open_failure("cannot open");
  opened_at = Clock::now();
  // Demuxers that find streams while reading (MPEG-TS) stop adding them past the limit.
  ic->max_streams = kMaxStreams + 1;
  check_stream_count();

  // Sizes the container states are checked before anything is decoded.
  if (options.want_video) {
    for (unsigned i = 0; i < ic->nb_streams; ++i) {
      const AVStream* st = ic->streams[i];
      if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO ||
          (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
        continue;
      const std::string refused = picture_limit_violation(st->codecpar->width, st->codecpar->height,
                                                          options.max_picture_pixels);
      if (!refused.empty()) fail(refused);
    }
  }
  // The probe decodes a frame of streams whose size the container does not state, allocating it
  // (FFmpeg's PNG decoder ignores skip_frame). A single picture that is going to be decoded anyway
  // is not probed: our decoder learns its size and checked_get_buffer refuses it before allocating.
  // Otherwise the probe is bounded by the pixel limit.
  single_picture = is_single_picture_format(ic->iformat);
  if (!(options.want_video && single_picture)) {
    std::vector<AVDictionary*> probe_opts(ic->nb_streams, nullptr);
    for (AVDictionary*& d : probe_opts)
      av_dict_set_int(&d, "max_pixels", ffmpeg_max_pixels(options.max_picture_pixels), 0);
    r = avformat_find_stream_info(ic, probe_opts.data());
    for (AVDictionary*& d : probe_opts) av_dict_free(&d);
    // An interrupted probe may still return success with what it had: the watchdog, which stays
    // fired, would then end the first read as a stall of the read budget.
    if (r < 0 || watchdog.fired != Fired::None) open_failure("cannot read stream parameters");
  }

  check_stream_count();
  info = describe_format(ic, shown);
  if (options.want_video) video_stream = choose_stream(AVMEDIA_TYPE_VIDEO);
  if (options.want_audio) audio_stream = choose_stream(AVMEDIA_TYPE_AUDIO);
  for (unsigned i = 0; i < ic->nb_streams; ++i)
    if (static_cast<int>(i) != video_stream && static_cast<int>(i) != audio_stream)
      ic->streams[i]->discard = AVDISCARD_ALL;

  if (video_stream >= 0) {
    const AVCodecParameters* par = ic->streams[video_stream]->codecpar;
    const std::string refused =
        picture_limit_violation(par->width, par->height, options.max_picture_pixels);
    if (!refused.empty()) fail(refused);
    open_decoder(video_stream, video_dec);
  }
  if (audio_stream >= 0) {
    check_audio_format(ic->streams[audio_stream]->codecpar);
    open_decoder(audio_stream, audio_dec);
  }

  packet = av_packet_alloc();
  frame = av_frame_alloc();
  if (!packet || !frame) fail("out of memory");
  last_packet_at = Clock::now();
}

// ---- reading

void MediaInput::State::note_reach(const AVPacket* p) {
  const int i = p->stream_index;
  if (i != video_stream && i != audio_stream) return;
  const int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
  if (ts == AV_NOPTS_VALUE) return;
  const AVStream* st = ic->streams[i];
  const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
  double& reached = i == video_stream ? video_reached_s : audio_reached_s;
  reached =
      std::max(reached, static_cast<double>(ts - start + p->duration) * av_q2d(st->time_base));
}

// An MP4/MOV whose tracks state their length in the index but whose packets ended well before
// it: cut short, e.g. a faststart file copied in part. FFmpeg only logs "partial file" and ends
// the input as if it were whole. Other containers are read as far as they go (MPEG-TS estimates
// its length from the bit rate; Matroska need not state one per track).
std::string MediaInput::State::truncation() const {
  if (!ic->iformat || std::string_view(ic->iformat->name).find("mov") == std::string_view::npos)
    return "";
  for (const int i : {video_stream, audio_stream}) {
    if (i < 0) continue;
    const AVStream* st = ic->streams[i];
    if (st->duration == AV_NOPTS_VALUE || st->duration <= 0) continue;
    const double stated = static_cast<double>(st->duration) * av_q2d(st->time_base);
    const double reached = i == video_stream ? video_reached_s : audio_reached_s;
    // A second or 2 %: a track's last packet and its stated duration differ by a frame or an
    // audio priming delay, never by that much in a whole file.
    if (stated - reached <= std::max(1.0, 0.02 * stated)) continue;
    char b[160];
    std::snprintf(b, sizeof b,
                  "the file is cut short: its %s ends at %.2f s of the %.2f s its index states",
                  i == video_stream ? "video" : "audio", reached, stated);
    return b;
  }
  return "";
}

void MediaInput::State::finish(EndReason reason, std::string message) {
  const double silent_s = std::chrono::duration<double>(Clock::now() - last_packet_at).count();
  pending.push_back(EndOfStream{reason, std::move(message), silent_s});
  finished = true;
}

void MediaInput::State::note_decode_error(int err) {
  std::string refused;
  {
    std::lock_guard<std::mutex> lock(log.mutex);
    refused = log.refused_picture;
  }
  if (!refused.empty()) fail(refused);  // ends the input: later frames would be as large
  ++decode_errors;
  last_decode_error = av_error_text(err) + ffmpeg_said();
}

void MediaInput::State::read_one() {
  // The budget runs from the start of each wait for a packet (not from the previous packet), so a
  // slow consumer is never mistaken for a stalled source. A demuxer answering EAGAIN keeps the
  // running budget.
  if (!last_read_again) watchdog.arm(options.read_timeout_s);
  // A file may be served from FFmpeg's buffers without any I/O that would poll the watchdog.
  if (watchdog.cancelled()) watchdog.fired = Fired::Interrupted;
  const int r = watchdog.fired == Fired::None ? av_read_frame(ic, packet) : AVERROR_EXIT;
  last_read_again = false;
  if (r >= 0) {
    // After the watchdog fired the demuxer may still hand out packets it had queued: they are not
    // news from the source.
    if (watchdog.fired == Fired::None) last_packet_at = Clock::now();
    note_reach(packet);
    if (packet->stream_index == video_stream)
      decode(video_dec, packet);
    else if (packet->stream_index == audio_stream)
      decode(audio_dec, packet);
    av_packet_unref(packet);
    return;
  }
  if (r == AVERROR(EAGAIN) && watchdog.fired == Fired::None && !watchdog.cancelled() &&
      Watchdog::now_ns() <= watchdog.deadline_ns) {
    last_read_again = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return;
  }

  // Whatever ended the input, what the decoders still hold is delivered first.
  if (video_dec) decode(video_dec, nullptr);
  if (audio_dec) {
    decode(audio_dec, nullptr);
    flush_resampler();
  }
  char b[96];
  if (watchdog.fired == Fired::Interrupted || watchdog.cancelled()) {
    finish(EndReason::Interrupted, shown + ": interrupted");
  } else if (watchdog.fired == Fired::Stalled || r == AVERROR(EAGAIN)) {
    std::snprintf(b, sizeof b, "no data within the read budget of %.3g s", options.read_timeout_s);
    finish(EndReason::Stalled, shown + ": " + b);
  } else if (r == AVERROR_EOF) {
    const std::string cut = truncation();
    if (cut.empty())
      finish(EndReason::EndOfInput, "");
    else
      finish(EndReason::Error, shown + ": " + cut);
  } else {
    finish(EndReason::Error, shown + ": read error: " + av_error_text(r) + ffmpeg_said());
  }
}

void MediaInput::State::decode(AVCodecContext* dec, const AVPacket* pkt) {
  bool failed = false;
  int r = avcodec_send_packet(dec, pkt);
  if (r < 0 && r != AVERROR_EOF) {
    note_decode_error(r);  // a bad packet is skipped, not fatal
    failed = true;
  }
  while (true) {
    r = avcodec_receive_frame(dec, frame);
    if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) break;
    if (r < 0) {
      note_decode_error(r);
      failed = true;
      break;
    }
    if (dec == video_dec)
      on_video_frame(frame);
    else
      on_audio_frame(frame);
    av_frame_unref(frame);
  }
  // A damaged AAC frame can name channel elements of any type and id, and FFmpeg's decoder
  // allocates 535 KiB for each new one and keeps it until closed: up to 64 (34 MiB) per stream,
  // never returned on a live input. A fresh decoder after an error holds none of them; what it
  // forgets (one frame's overlap, already damaged) is what the error cost anyway.
  if (failed && pkt && dec == audio_dec) reopen_decoder(audio_stream, audio_dec);
}

void MediaInput::State::reopen_decoder(int stream, AVCodecContext*& dec) {
  avcodec_free_context(&dec);
  open_decoder(stream, dec);
}

void MediaInput::State::on_video_frame(const AVFrame* f) {
  const int64_t index = video_frames++;
  const AVStream* st = ic->streams[video_stream];
  double pts_s;
  if (f->best_effort_timestamp != AV_NOPTS_VALUE) {
    pts_s = static_cast<double>(f->best_effort_timestamp) * av_q2d(st->time_base);
  } else {
    const double fps = rational_or_zero(st->avg_frame_rate);
    pts_s = static_cast<double>(index) / (fps > 0 ? fps : 24.0);
  }
  if (options.keep_video_frame && !options.keep_video_frame(index)) return;
  if (options.video_min_interval_s > 0 && last_converted_pts && pts_s >= *last_converted_pts &&
      pts_s - *last_converted_pts < options.video_min_interval_s)
    return;
  last_converted_pts = pts_s;
  pending.push_back(VideoFrame{to_rgb(f), pts_s, index});
}

RgbImage MediaInput::State::to_rgb(const AVFrame* f) {
  const std::string refused =
      picture_limit_violation(f->width, f->height, options.max_picture_pixels);
  if (!refused.empty()) fail(refused);
  const auto [format, full_range, yuv] = sws_source(f);
  const int flags = (yuv && !single_picture) ? kFastSwsFlags : kExactSwsFlags;
  SwsContext* ctx = sws_getCachedContext(sws, f->width, f->height, format, f->width, f->height,
                                         AV_PIX_FMT_RGB24, flags, nullptr, nullptr, nullptr);
  if (!ctx) {
    const char* name = av_get_pix_fmt_name(format);
    fail(std::string("cannot convert pixel format ") + (name ? name : "?") + " to RGB");
  }
  const int colorspace = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : f->colorspace;
  if (ctx != sws || format != sws_format || colorspace != sws_colorspace ||
      full_range != sws_full_range) {
    // Unknown matrices fall back to BT.601, as swscale and PIL do.
    sws_setColorspaceDetails(ctx, sws_getCoefficients(colorspace), full_range ? 1 : 0,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    sws_format = format;
    sws_colorspace = colorspace;
    sws_full_range = full_range;
  }
  sws = ctx;

  RgbImage img;
  img.width = f->width;
  img.height = f->height;
  const size_t bytes = static_cast<size_t>(f->width) * static_cast<size_t>(f->height) * 3;
  // swscale's SIMD may store a few bytes past the last row.
  img.rgb.resize(bytes + 64);
  uint8_t* dst[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
  const int dst_stride[4] = {f->width * 3, 0, 0, 0};
  const int rows = sws_scale(ctx, f->data, f->linesize, 0, f->height, dst, dst_stride);
  if (rows != f->height) fail("pixel conversion to RGB failed");
  img.rgb.resize(bytes);
  return img;
}

void MediaInput::State::configure_resampler(const AVFrame* f) {
  AVChannelLayout in_layout{};
  if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels == 0)
    av_channel_layout_default(&in_layout,
                              f->ch_layout.nb_channels > 0 ? f->ch_layout.nb_channels : 1);
  else
    av_channel_layout_copy(&in_layout, &f->ch_layout);

  if (swr && swr_in_format == f->format && swr_in_rate == f->sample_rate &&
      av_channel_layout_compare(&swr_in_layout, &in_layout) == 0) {
    av_channel_layout_uninit(&in_layout);
    return;
  }
  flush_resampler();  // what the old configuration still holds belongs before the new samples
  // A stream may change its format mid-way: the new one is held to the same bounds.
  const std::string problem =
      audio_format_problem(f->sample_rate, in_layout.nb_channels, "its audio changed to");
  if (!problem.empty()) {
    av_channel_layout_uninit(&in_layout);
    fail(problem);
  }
  swr_free(&swr);
  av_channel_layout_uninit(&swr_in_layout);
  swr_in_layout = in_layout;  // takes ownership
  swr_in_format = f->format;
  swr_in_rate = f->sample_rate;

  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  int r =
      swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, AudioClip::kSampleRate, &swr_in_layout,
                          static_cast<AVSampleFormat>(f->format), f->sample_rate, 0, nullptr);
  if (r < 0) fail("cannot configure the resampler: " + av_error_text(r));
  // FFmpeg's standard downmix matrix scaled to unity gain: stereo becomes (L + R) / 2, the mean
  // that librosa/torchaudio (the HF reference's loaders) take; more channels follow the ITU-style
  // matrix (centre and surrounds at -3 dB, LFE dropped), scaled so the coefficients sum to 1.
  av_opt_set_double(swr, "rematrix_maxval", 1.0, 0);
  r = swr_init(swr);
  if (r < 0) fail("cannot initialise the resampler: " + av_error_text(r));
}

void MediaInput::State::on_audio_frame(const AVFrame* f) {
  configure_resampler(f);
  const AVStream* st = ic->streams[audio_stream];
  // The first output sample of this call lags the frame's first input sample by what the
  // resampler still buffers.
  const double delay_s =
      static_cast<double>(swr_get_delay(swr, AudioClip::kSampleRate)) / AudioClip::kSampleRate;
  double pts_s;
  if (f->best_effort_timestamp != AV_NOPTS_VALUE)
    pts_s = static_cast<double>(f->best_effort_timestamp) * av_q2d(st->time_base) - delay_s;
  else
    pts_s = next_audio_pts.value_or(0.0);

  const int capacity = swr_get_out_samples(swr, f->nb_samples);
  if (capacity < 0) fail("resampler error: " + av_error_text(capacity));
  std::vector<float> out(static_cast<size_t>(capacity));
  uint8_t* out_planes[1] = {reinterpret_cast<uint8_t*>(out.data())};
  const int n = swr_convert(swr, out_planes, capacity,
                            const_cast<const uint8_t**>(f->extended_data), f->nb_samples);
  if (n < 0) fail("resampler error: " + av_error_text(n));
  out.resize(static_cast<size_t>(n));
  emit_audio(std::move(out), pts_s);
}

void MediaInput::State::flush_resampler() {
  if (!swr) return;
  std::vector<float> all;
  std::vector<float> block(4096);
  while (true) {
    uint8_t* out_planes[1] = {reinterpret_cast<uint8_t*>(block.data())};
    const int n = swr_convert(swr, out_planes, static_cast<int>(block.size()), nullptr, 0);
    if (n <= 0) break;
    all.insert(all.end(), block.begin(), block.begin() + n);
  }
  emit_audio(std::move(all), next_audio_pts.value_or(0.0));
}

void MediaInput::State::emit_audio(std::vector<float> samples, double pts_s) {
  if (samples.empty()) return;
  const auto n = static_cast<int64_t>(samples.size());
  pending.push_back(AudioChunk{std::move(samples), pts_s, audio_samples_out});
  audio_samples_out += n;
  next_audio_pts = pts_s + static_cast<double>(n) / AudioClip::kSampleRate;
}

// ---- MediaInput

MediaInput::MediaInput(std::string url, InputOptions options) : s_(std::make_unique<State>()) {
  s_->url = std::move(url);
  s_->shown = redact_url(s_->url);
  s_->options = std::move(options);
  s_->open();
}

MediaInput::~MediaInput() = default;

std::optional<MediaEvent> MediaInput::next() {
  State& s = *s_;
  while (s.pending.empty() && !s.finished) {
    try {
      s.read_one();
    } catch (const MediaError& e) {
      s.finish(EndReason::Error, e.what());
    }
  }
  if (s.pending.empty()) return std::nullopt;
  MediaEvent ev = std::move(s.pending.front());
  s.pending.pop_front();
  return ev;
}

void MediaInput::interrupt() { s_->watchdog.interrupt_requested = true; }

bool MediaInput::has_video() const { return s_->video_stream >= 0; }
bool MediaInput::has_audio() const { return s_->audio_stream >= 0; }
std::chrono::steady_clock::time_point MediaInput::opened_at() const { return s_->opened_at; }

double MediaInput::video_fps() const {
  if (s_->video_stream < 0) return 0;
  return rational_or_zero(s_->ic->streams[s_->video_stream]->avg_frame_rate);
}

const MediaInfo& MediaInput::info() const { return s_->info; }
const std::string& MediaInput::url() const { return s_->url; }
int64_t MediaInput::video_frames_decoded() const { return s_->video_frames; }
int64_t MediaInput::decode_errors() const { return s_->decode_errors; }
std::string MediaInput::last_decode_error() const { return s_->last_decode_error; }

}  // namespace rawflow::media
