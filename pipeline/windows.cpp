#include "pipeline/windows.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iterator>

namespace rawflow::pipeline {
namespace {

constexpr int64_t kFrame = kAudioFrameSamples;

int64_t frames_ceil(int64_t samples) { return (samples + kFrame - 1) / kFrame; }

// A transcribe task's hop between window starts, in samples (at least one).
int64_t hop_samples(const TaskConfig& t) {
  return std::max<int64_t>(1, std::llround(t.interval_s * kAudioSampleRate));
}

}  // namespace

int64_t UsedUnits::mark(int64_t begin, int64_t end) {
  if (end <= begin) return 0;
  // Merge [begin, end) with every range it overlaps or touches, counting what was already there.
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin() && std::prev(it)->second >= begin) --it;
  int64_t lo = begin, hi = end, already = 0;
  while (it != ranges_.end() && it->first <= end) {
    already += std::max<int64_t>(0, std::min(it->second, end) - std::max(it->first, begin));
    lo = std::min(lo, it->first);
    hi = std::max(hi, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(lo, hi);
  const int64_t added = (end - begin) - already;
  count_ += added;
  return added;
}

void UsedUnits::forget_below(int64_t n) {
  while (!ranges_.empty() && ranges_.begin()->second <= n) ranges_.erase(ranges_.begin());
}

uint64_t next_request_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

StreamWindows::StreamWindows(const PipelineConfig& cfg, size_t stream_index)
    : cfg_(cfg),
      stream_(stream_index),
      droppable_(cfg.streams[stream_index].queue.overflow == Overflow::DropOldest) {
  const StreamConfig& s = cfg.streams[stream_index];
  for (const std::string& name : s.tasks) {
    const TaskConfig* t = cfg.find_task(name);
    if (!t) continue;  // load_config already refused unknown names
    TaskState st;
    st.task = static_cast<size_t>(t - cfg.tasks.data());
    st.cfg = t;
    st.next_at = t->interval_s;
    if (t->kind == TaskKind::Transcribe && t->streaming_prefill_s > 0)
      st.piece =
          std::max<int64_t>(1, std::llround(t->streaming_prefill_s * kRate / kFrame)) * kFrame;
    tasks_.push_back(std::move(st));
  }
}

void StreamWindows::on_audio(const std::vector<float>& samples) {
  media_since_restart_ = true;
  buf_.insert(buf_.end(), samples.begin(), samples.end());
  total_ += static_cast<int64_t>(samples.size());
  received_ += static_cast<int64_t>(samples.size());
  stats_.audio_frames_in = frames_ceil(received_);
  for (TaskState& t : tasks_) {
    if (t.cfg->kind == TaskKind::Transcribe) {
      const int64_t window = std::llround(t.cfg->audio_window_s * kRate);
      while (t.next_start + window <= total_) fire_transcribe(t, t.next_start + window);
      if (t.piece > 0) stream_pieces(t);
    } else if (!t.cfg->uses_video()) {  // audio-only prompt task: intervals on the audio clock
      while (audio_time() >= t.next_at) fire_interval(t);
    }
  }
  trim_audio();
}

void StreamWindows::on_video(const media::RgbImage& image, double t) {
  const int64_t index = stats_.video_frames_in++;
  media_since_restart_ = true;
  video_time_ = std::max(video_time_, t);
  for (TaskState& ts : tasks_) {
    if (!ts.cfg->uses_video()) continue;
    while (t >= ts.next_at) fire_interval(ts);
    // Keep at most frames_per_request frames per interval, spread over it: a frame is kept when
    // it starts a new slot of interval_s / frames_per_request.
    const double slot = ts.cfg->interval_s / ts.cfg->frames_per_request;
    const double interval_start = ts.next_at - ts.cfg->interval_s;
    const auto slot_of = [&](double x) {
      return static_cast<int64_t>((x - interval_start) / slot);
    };
    if (ts.frames.empty() || slot_of(t) > slot_of(ts.frames.back().t))
      ts.frames.push_back({t, index, image});
  }
  video_used_.forget_below(oldest_held_frame());
}

int64_t StreamWindows::oldest_held_frame() const {
  int64_t oldest = stats_.video_frames_in;
  for (const TaskState& t : tasks_)
    if (!t.frames.empty()) oldest = std::min(oldest, t.frames.front().index);
  return oldest;
}

void StreamWindows::on_lost() {
  close_open_windows();
  restart_windows();
}

void StreamWindows::on_gap(double seconds) {
  // Close what is open (unless on_lost() already did): the windows cover only what was received.
  close_open_windows();
  const int64_t skip = std::llround(std::max(0.0, seconds) * kRate);
  total_ += skip;
  video_time_ += std::max(0.0, seconds);
  restart_windows();
}

void StreamWindows::close_open_windows() {
  if (!media_since_restart_) return;  // e.g. a gap right after on_lost(): nothing is open
  for (TaskState& t : tasks_) {
    if (t.cfg->kind == TaskKind::Transcribe) {
      if (remainder_wanted(t)) fire_transcribe(t, total_);  // the others: abandon_streamed
    } else if (!t.frames.empty() ||
               (!t.cfg->uses_video() && audio_time() > t.next_at - t.cfg->interval_s)) {
      fire_interval(t);  // an interval with frames, or an audio-only one with audio in it
    }
  }
}

void StreamWindows::restart_windows() {
  for (TaskState& t : tasks_) abandon_streamed(t);
  buf_.clear();
  buf_first_ = total_;
  audio_used_.forget_below(received_ / kFrame);
  for (TaskState& t : tasks_) {
    t.next_start = total_;
    t.next_at = timeline_time() + t.cfg->interval_s;
    t.frames.clear();
  }
  media_since_restart_ = false;
}

void StreamWindows::on_end() {
  close_open_windows();
  for (TaskState& t : tasks_) abandon_streamed(t);
}

std::vector<MediaRequest> StreamWindows::take() {
  std::vector<MediaRequest> r;
  r.swap(out_);
  return r;
}

std::vector<EarlyPrefill> StreamWindows::take_early() {
  std::vector<EarlyPrefill> e;
  e.swap(early_);
  return e;
}

// Every window open now (they overlap when the hop is shorter than the window) hands on its
// audio in whole pieces. None reaches its window's end: on_audio fired the complete ones first.
void StreamWindows::stream_pieces(TaskState& t) {
  const int64_t hop = hop_samples(*t.cfg);
  for (int64_t start = t.next_start; start < total_; start += hop) {
    int64_t& done = t.streamed.try_emplace(start, start).first->second;
    while (done + t.piece <= total_) {
      AudioPiece p{stream_, t.task, start, done, {}};
      p.samples.assign(buf_.begin() + (done - buf_first_),
                       buf_.begin() + (done + t.piece - buf_first_));
      early_.emplace_back(std::move(p));
      done += t.piece;
    }
  }
}

void StreamWindows::abandon_streamed(TaskState& t) {
  for (const auto& [start, done] : t.streamed)
    if (done > start) early_.emplace_back(AbandonedWindow{stream_, t.task, start});
  t.streamed.clear();
}

bool StreamWindows::remainder_wanted(const TaskState& t) const {
  const int64_t fresh = total_ - std::max(t.next_start, t.covered_end);
  return fresh > 0 && (fresh >= kMinRemainder || t.covered_end == 0);
}

void StreamWindows::fire_transcribe(TaskState& t, int64_t end) {
  t.covered_end = std::max(t.covered_end, end);
  MediaRequest r;
  r.stream = stream_;
  r.task = t.task;
  r.droppable = droppable_;
  take_audio(r, t.next_start, end);
  r.start_s = static_cast<double>(t.next_start) / kRate;
  r.end_s = static_cast<double>(end) / kRate;
  // The window's pieces, if it had any: its request carries their key, or it is abandoned.
  int64_t streamed_samples = 0;
  if (const auto it = t.streamed.find(t.next_start); it != t.streamed.end()) {
    streamed_samples = it->second - it->first;
    t.streamed.erase(it);
  }
  const bool streamed = streamed_samples > 0;
  const int64_t window_start = t.next_start;
  t.next_start += hop_samples(*t.cfg);
  if (!passes_gate(*t.cfg, r.audio)) {
    ++stats_.silent_skipped;
    if (streamed) early_.emplace_back(AbandonedWindow{stream_, t.task, window_start});
    return;
  }
  if (streamed) {
    r.window_start = window_start;
    r.streamed_samples = streamed_samples;
  }
  count_audio_used(r.audio_first_sample, end);
  r.id = next_request_id();
  r.sequence = t.made++;
  r.created = std::chrono::steady_clock::now();
  out_.push_back(std::move(r));
}

void StreamWindows::fire_interval(TaskState& t) {
  const double end_s = t.next_at;
  const double start_s = end_s - t.cfg->interval_s;
  t.next_at += t.cfg->interval_s;
  std::vector<HeldFrame> frames;
  frames.swap(t.frames);
  if (t.cfg->uses_video() && frames.empty()) {
    ++stats_.empty_skipped;
    return;
  }
  MediaRequest r;
  r.stream = stream_;
  r.task = t.task;
  r.droppable = droppable_;
  r.start_s = start_s;
  r.end_s = std::min(end_s, std::max(audio_time(), frames.empty() ? 0.0 : frames.back().t));
  for (HeldFrame& f : frames) {
    r.frame_times.push_back(f.t);
    r.frames.push_back(std::move(f.image));
  }
  if (t.cfg->uses_audio()) {
    // The last audio_window_s seconds before the interval's last frame (or its end).
    const double until = frames.empty() ? std::min(end_s, audio_time()) : r.frame_times.back();
    const int64_t e = std::clamp<int64_t>(std::llround(until * kRate), buf_first_, total_);
    const int64_t b =
        std::max<int64_t>(buf_first_, e - std::llround(t.cfg->audio_window_s * kRate));
    take_audio(r, b, e);
    if (!passes_gate(*t.cfg, r.audio)) {
      ++stats_.silent_skipped;
      return;
    }
    count_audio_used(b, e);
  }
  for (const HeldFrame& f : frames) video_used_.mark(f.index, f.index + 1);
  stats_.video_frames_used = video_used_.count();
  r.id = next_request_id();
  r.sequence = t.made++;
  r.created = std::chrono::steady_clock::now();
  out_.push_back(std::move(r));
}

void StreamWindows::take_audio(MediaRequest& r, int64_t begin, int64_t end) {
  begin = std::max(begin, buf_first_);
  end = std::min(end, total_);
  r.audio_first_sample = begin;
  if (end <= begin) return;
  r.audio.assign(buf_.begin() + (begin - buf_first_), buf_.begin() + (end - buf_first_));
}

bool StreamWindows::passes_gate(const TaskConfig& t, const std::vector<float>& audio) const {
  if (!t.silence_gate.enabled) return true;
  // Count 40 ms frames louder than the threshold (RMS in dBFS).
  int64_t loud = 0;
  for (size_t f = 0; f < audio.size(); f += kFrame) {
    const size_t n = std::min<size_t>(kFrame, audio.size() - f);
    double ss = 0;
    for (size_t i = 0; i < n; ++i) ss += static_cast<double>(audio[f + i]) * audio[f + i];
    const double rms = std::sqrt(ss / static_cast<double>(n));
    if (rms > 0 && 20 * std::log10(rms) > t.silence_gate.threshold_dbfs) ++loud;
  }
  return static_cast<double>(loud) * kFrame / kRate >= t.silence_gate.min_speech_s;
}

void StreamWindows::trim_audio() {
  // Keep what the next windows can still need.
  int64_t keep_from = total_;
  for (const TaskState& t : tasks_) {
    if (t.cfg->kind == TaskKind::Transcribe)
      keep_from = std::min(keep_from, t.next_start);
    else if (t.cfg->uses_audio())
      keep_from = std::min<int64_t>(
          keep_from, total_ - std::llround((t.cfg->audio_window_s + t.cfg->interval_s) * kRate));
  }
  keep_from = std::max(keep_from, buf_first_);
  buf_.erase(buf_.begin(), buf_.begin() + (keep_from - buf_first_));
  buf_first_ = keep_from;
  // No request reaches before buf_first_ any more; its frame may still be partly ahead.
  audio_used_.forget_below((buf_first_ - (total_ - received_)) / kFrame);
}

void StreamWindows::count_audio_used(int64_t begin, int64_t end) {
  // [begin, end) is on the timeline and within the audio received since the last gap (a gap
  // empties the buffer), so the gap samples before it are total_ − received_.
  if (end <= begin) return;
  const int64_t gap_samples = total_ - received_;
  audio_used_.mark((begin - gap_samples) / kFrame, frames_ceil(end - gap_samples));
  stats_.audio_frames_used = audio_used_.count();
}

}  // namespace rawflow::pipeline
