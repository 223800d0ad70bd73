#define BOOST_TEST_MODULE test_rtsp_input
// MediaInput against a live RTSP server (tests/rtsp/rtsp_server.py, GStreamer): video and audio
// over TCP and UDP, the watchdog on a frozen server, a killed server, the open budget, interrupt(),
// a stalled feeder (session up, no media) shorter and longer than the read budget. Then the
// stream timeline (nodes::StreamTimeline) on its own, and nodes::Source on a stalled feeder: the
// gap it reports and the video and audio clocks kept together.
// Every wait is bounded: a guard thread interrupts any read that outlives its test's deadline.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "media/input.h"
#include "media/media_error.h"
#include "nodes/source.h"

extern char** environ;

using namespace rawflow::media;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The GStreamer RTSP server as a child process; killed (by its pid) when this goes out of scope.
class RtspServer {
 public:
  explicit RtspServer(int port = 0, const std::string& audio = "aac") {
    const char* src = std::getenv("RAWFLOW_SOURCE_DIR");
    if (!src || !*src)
      throw std::runtime_error("RAWFLOW_SOURCE_DIR is not set (run through ctest)");
    const std::string script = std::string(src) + "/tests/rtsp/rtsp_server.py";
    int fds[2];
    BOOST_REQUIRE(pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    const std::string port_arg = std::to_string(port);
    std::vector<std::string> args = {"/usr/bin/python3", script, port_arg, "--audio", audio};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_fd_ = fds[0];
    BOOST_REQUIRE_MESSAGE(rc == 0, "cannot start /usr/bin/python3 " << script);
    read_ready_line(30.0);  // python + GStreamer start-up takes seconds on a busy machine
  }
  ~RtspServer() { kill_now(); }

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  void freeze() { ::kill(pid_, SIGSTOP); }
  void thaw() { ::kill(pid_, SIGCONT); }
  // The feeder stops (RTSP sessions and RTCP stay up, no media) / resumes; returns once the
  // server acknowledged it.
  void stall_feeder() { signal_and_wait(SIGUSR1, "STALLED"); }
  void resume_feeder() { signal_and_wait(SIGUSR2, "RESUMED"); }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    if (out_fd_ >= 0) close(out_fd_);
    out_fd_ = -1;
  }

 private:
  // One line of the server's stdout (its acknowledgements), within timeout_s.
  std::string read_line(double timeout_s, const char* waiting_for) {
    const auto start = Clock::now();
    while (pending_.find('\n') == std::string::npos) {
      const int left_ms = static_cast<int>((timeout_s - since(start)) * 1000);
      BOOST_REQUIRE_MESSAGE(left_ms > 0,
                            "RTSP server: no " << waiting_for << " within " << timeout_s << " s");
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, left_ms) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out_fd_, buf, sizeof buf);
      BOOST_REQUIRE_MESSAGE(n > 0, "RTSP server exited while waiting for " << waiting_for);
      pending_.append(buf, static_cast<size_t>(n));
    }
    const size_t eol = pending_.find('\n');
    std::string line = pending_.substr(0, eol);
    pending_.erase(0, eol + 1);
    return line;
  }
  // Sends `sig` and waits for the line acknowledging it (earlier acknowledgements are skipped).
  void signal_and_wait(int sig, const std::string& ack) {
    ::kill(pid_, sig);
    while (read_line(10.0, ack.c_str()).rfind(ack + " ", 0) != 0) {
    }
  }

  void read_ready_line(double timeout_s) {
    const auto start = Clock::now();
    const std::string line = read_line(timeout_s, "READY line");
    char url[256] = {};
    BOOST_REQUIRE_MESSAGE(std::sscanf(line.c_str(), "READY %d %255s", &port_, url) == 2,
                          "unexpected line from the server: " << line);
    url_ = url;
    BOOST_TEST_MESSAGE("RTSP server ready after " << since(start) << " s: " << url_);
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string pending_;  // read from stdout, not yet returned as a line
  int port_ = 0;
  std::string url_;
};

// Interrupts `in` if the test is still reading after `seconds`: a broken watchdog fails the test
// instead of hanging it.
class HangGuard {
 public:
  HangGuard(MediaInput& in, double seconds)
      : thread_([this, &in, seconds] {
          std::unique_lock<std::mutex> lock(m_);
          if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                            [this] { return done_; })) {
            fired = true;
            in.interrupt();
          }
        }) {}
  ~HangGuard() {
    {
      std::lock_guard<std::mutex> lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  std::atomic<bool> fired{false};

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

struct Tally {
  int video = 0;
  int64_t samples = 0;
  double sum_squares = 0;
  double last_video_pts = -1e300, last_audio_pts = -1e300;
  bool monotonic = true, contiguous = true, sized = true;
  std::optional<EndOfStream> end;
  Clock::time_point last_event = Clock::now(), end_time = Clock::now();

  void add(MediaEvent& ev) {
    last_event = Clock::now();
    if (auto* f = std::get_if<VideoFrame>(&ev)) {
      monotonic &= f->pts_s > last_video_pts;
      sized &=
          f->image.width == 320 && f->image.height == 240 && f->image.rgb.size() == 320 * 240 * 3;
      last_video_pts = f->pts_s;
      ++video;
    } else if (auto* c = std::get_if<AudioChunk>(&ev)) {
      monotonic &= c->pts_s > last_audio_pts;
      contiguous &= c->first_sample == samples;
      last_audio_pts = c->pts_s;
      for (float s : c->samples) sum_squares += static_cast<double>(s) * s;
      samples += static_cast<int64_t>(c->samples.size());
    } else {
      end = std::get<EndOfStream>(ev);
      end_time = Clock::now();
    }
  }
  template <class Done>
  void read(MediaInput& in, Done done) {
    while (!end && !done()) {
      auto ev = in.next();
      if (!ev) break;
      add(*ev);
    }
  }
  double rms() const { return samples ? std::sqrt(sum_squares / static_cast<double>(samples)) : 0; }
};

InputOptions live(const std::string& transport, double read_timeout_s = 1.5) {
  InputOptions o;
  o.rtsp_transport = transport;
  o.open_timeout_s = 10;
  o.read_timeout_s = read_timeout_s;
  return o;
}

RtspServer& shared_server() {
  static RtspServer server;
  return server;
}

void reads_video_and_audio(const std::string& transport) {
  RtspServer& server = shared_server();
  const auto t_open = Clock::now();
  MediaInput in(server.url(), live(transport));
  const double open_s = since(t_open);
  BOOST_REQUIRE(in.has_video());
  BOOST_REQUIRE(in.has_audio());
  HangGuard guard(in, 20);
  Tally t;
  const auto t_read = Clock::now();
  t.read(in, [&] { return t.video >= 50 && t.samples >= 32000; });
  const double read_s = since(t_read);
  BOOST_TEST_MESSAGE(transport << ": open " << open_s << " s; " << t.video << " frames and "
                               << t.samples << " samples in " << read_s << " s; audio RMS "
                               << t.rms() << "; decode errors " << in.decode_errors());
  BOOST_CHECK(!guard.fired);
  BOOST_REQUIRE(!t.end);
  BOOST_CHECK_GE(t.video, 50);
  BOOST_CHECK_GE(t.samples, 32000);
  BOOST_CHECK(t.sized);
  BOOST_CHECK(t.monotonic);
  BOOST_CHECK(t.contiguous);
  // A 0.3-amplitude tone on both channels → mono RMS 0.3/√2 = 0.21; AAC keeps it within ±20 %.
  BOOST_CHECK_CLOSE(t.rms(), 0.3 / std::sqrt(2.0), 20.0);
  // Live: 2 s of media should not take much longer than 2 s to arrive (keyframe wait included).
  BOOST_CHECK_LT(read_s, 6.0);
}

// Freezes the server mid-stream; the watchdog must end the read within its budget.
void watchdog_fires_on_frozen_server(const std::string& transport) {
  RtspServer& server = shared_server();
  const double budget = 1.5;
  MediaInput in(server.url(), live(transport, budget));
  HangGuard guard(in, 20);
  Tally t;
  t.read(in, [&] { return t.video >= 10; });
  BOOST_REQUIRE(!t.end);
  server.freeze();
  const auto t_frozen = Clock::now();
  t.read(in, [] { return false; });
  const double to_end = std::chrono::duration<double>(t.end_time - t_frozen).count();
  const double after_last = std::chrono::duration<double>(t.end_time - t.last_event).count();
  server.thaw();
  BOOST_REQUIRE(t.end);
  BOOST_TEST_MESSAGE(transport << " frozen: end (" << end_reason_name(t.end->reason) << ") "
                               << to_end << " s after SIGSTOP; " << t.end->message);
  BOOST_CHECK(!guard.fired);
  BOOST_CHECK(t.end->reason == EndReason::Stalled);
  BOOST_CHECK(t.end->message.find(server.url()) != std::string::npos);
  // Not before the budget (the last wait may have begun up to one packet interval, ≤ 40 ms, before
  // the freeze; 0.1 s allowed) and not much after it (1 s for scheduling on a loaded 2-core box).
  BOOST_CHECK_GE(to_end, budget - 0.1);
  BOOST_CHECK_LE(to_end, budget + 1.0);
  BOOST_CHECK_LE(after_last, budget + 1.0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(tcp_reads_video_and_audio) { reads_video_and_audio("tcp"); }
BOOST_AUTO_TEST_CASE(udp_reads_video_and_audio) { reads_video_and_audio("udp"); }
BOOST_AUTO_TEST_CASE(tcp_watchdog_on_frozen_server) { watchdog_fires_on_frozen_server("tcp"); }
BOOST_AUTO_TEST_CASE(udp_watchdog_on_frozen_server) { watchdog_fires_on_frozen_server("udp"); }

BOOST_AUTO_TEST_CASE(open_budget_and_refused_connection) {
  RtspServer& server = shared_server();
  // A frozen server accepts the TCP connection (the kernel does) but never answers RTSP.
  server.freeze();
  InputOptions o = live("tcp");
  o.open_timeout_s = 1.5;
  const auto t0 = Clock::now();
  try {
    MediaInput in(server.url(), o);
    BOOST_ERROR("opened a frozen server");
  } catch (const MediaError& e) {
    const double took = since(t0);
    BOOST_TEST_MESSAGE("frozen server, open budget 1.5 s: " << took << " s: " << e.what());
    BOOST_CHECK(std::string(e.what()).find("open budget") != std::string::npos);
    BOOST_CHECK(std::string(e.what()).find(server.url()) != std::string::npos);
    BOOST_CHECK_GE(took, 1.5 - 0.05);
    BOOST_CHECK_LE(took, 1.5 + 1.0);
  }

  // Cancelled from another thread while the open waits (InputOptions::cancel).
  std::atomic<bool> cancel{false};
  o.open_timeout_s = 10;
  o.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  const auto t1 = Clock::now();
  try {
    MediaInput in(server.url(), o);
    BOOST_ERROR("opened a frozen server");
  } catch (const MediaError& e) {
    const double took = since(t1);
    BOOST_TEST_MESSAGE("open cancelled after 0.3 s: returned after " << took << " s: " << e.what());
    BOOST_CHECK(std::string(e.what()).find("interrupted") != std::string::npos);
    BOOST_CHECK_LE(took, 0.3 + 0.5);
  }
  canceller.join();
  server.thaw();

  // Nothing listening: refused at once.
  const std::string nobody = "rtsp://127.0.0.1:9/live";  // port 9 (discard) is not served here
  const auto t2 = Clock::now();
  BOOST_CHECK_THROW(MediaInput(nobody, live("tcp")), MediaError);
  BOOST_CHECK_LE(since(t2), 1.0);
}

// Most of an RTSP open is the probe (about 1 s of media is buffered): a budget that runs out
// during it fails the open, rather than returning an input whose first read is a "stall".
BOOST_AUTO_TEST_CASE(open_budget_running_out_during_the_probe_fails_the_open) {
  RtspServer& server = shared_server();
  for (const double budget : {0.6, 0.9}) {
    InputOptions o = live("tcp");
    o.open_timeout_s = budget;
    const auto t0 = Clock::now();
    try {
      MediaInput in(server.url(), o);
      auto ev = in.next();
      BOOST_ERROR("opened within " << budget << " s; first event: "
                                   << (ev && std::holds_alternative<EndOfStream>(*ev)
                                           ? std::get<EndOfStream>(*ev).message
                                           : std::string("media")));
    } catch (const MediaError& e) {
      const double took = since(t0);
      BOOST_TEST_MESSAGE("open budget " << budget << " s: failed after " << took
                                        << " s: " << e.what());
      BOOST_CHECK(std::string(e.what()).find("open budget") != std::string::npos);
      BOOST_CHECK_LE(took, budget + 1.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(interrupt_from_another_thread) {
  RtspServer& server = shared_server();
  MediaInput in(server.url(), live("tcp", 10.0));  // budget far above the interrupt delay
  HangGuard guard(in, 20);
  Tally t;
  t.read(in, [&] { return t.video >= 5; });
  server.freeze();
  std::thread interrupter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    in.interrupt();
  });
  const auto t0 = Clock::now();
  t.read(in, [] { return false; });
  const double took = std::chrono::duration<double>(t.end_time - t0).count();
  interrupter.join();
  server.thaw();
  BOOST_REQUIRE(t.end);
  BOOST_TEST_MESSAGE("interrupt() after 0.3 s: end after " << took << " s");
  BOOST_CHECK(t.end->reason == EndReason::Interrupted);
  BOOST_CHECK_LE(took, 0.3 + 0.5);
  BOOST_CHECK(!in.next());  // and it stays ended
}

BOOST_AUTO_TEST_CASE(killed_server_ends_the_read_and_a_restart_can_be_reopened) {
  for (const std::string transport : {"tcp", "udp"}) {
    auto server = std::make_unique<RtspServer>();
    const int port = server->port();
    const std::string url = server->url();
    const double budget = 1.5;
    {
      MediaInput in(url, live(transport, budget));
      HangGuard guard(in, 20);
      Tally t;
      t.read(in, [&] { return t.video >= 10; });
      BOOST_REQUIRE(!t.end);
      server->kill_now();
      const auto t0 = Clock::now();
      t.read(in, [] { return false; });
      BOOST_REQUIRE(t.end);
      const double took = std::chrono::duration<double>(t.end_time - t0).count();
      BOOST_TEST_MESSAGE(transport << " server killed: " << end_reason_name(t.end->reason)
                                   << " after " << took << " s " << t.end->message);
      BOOST_CHECK(!guard.fired);
      // Over TCP the closed connection is an EOF, exactly like the end of a file (which is why a
      // live source must treat EndOfInput as "reconnect"); over UDP the RTP packets just stop.
      if (transport == "tcp")
        BOOST_CHECK(t.end->reason == EndReason::EndOfInput);
      else
        BOOST_CHECK(t.end->reason == EndReason::EndOfInput || t.end->reason == EndReason::Stalled);
      BOOST_CHECK_LE(took, budget + 1.0);
    }
    // The camera comes back on the same address: a new MediaInput reads from it.
    server = std::make_unique<RtspServer>(port);
    MediaInput again(server->url(), live(transport));
    HangGuard guard(again, 20);
    Tally t;
    t.read(again, [&] { return t.video >= 5; });
    BOOST_CHECK(!t.end);
    BOOST_CHECK_GE(t.video, 5);
  }
}

// ---- a stalled feeder: the server and its sessions stay up, the media stops

namespace {

// Stalls the shared server's feeder; resumes it when the test ends, whatever happened.
class StalledFeeder {
 public:
  explicit StalledFeeder(RtspServer& server) : server_(server) {
    server_.stall_feeder();
    stalled_at = Clock::now();
  }
  ~StalledFeeder() {
    if (!resumed_at) ::kill(server_.pid(), SIGUSR2);
  }
  void resume() {
    server_.resume_feeder();
    resumed_at = Clock::now();
  }
  double length_s() const {
    return std::chrono::duration<double>(*resumed_at - stalled_at).count();
  }

  Clock::time_point stalled_at;
  std::optional<Clock::time_point> resumed_at;

 private:
  RtspServer& server_;
};

// The largest forward jumps of each medium's timestamps beyond one unit's length.
struct JumpTally {
  int video = 0;
  double last_video_pts = -1, video_jump = 0;
  double audio_end_pts = -1, audio_jump = 0;
  std::optional<EndOfStream> end;
  void add(MediaEvent& ev) {
    if (auto* f = std::get_if<VideoFrame>(&ev)) {
      if (video > 0) video_jump = std::max(video_jump, f->pts_s - last_video_pts - 1.0 / 25);
      last_video_pts = f->pts_s;
      ++video;
    } else if (auto* c = std::get_if<AudioChunk>(&ev)) {
      if (audio_end_pts >= 0) audio_jump = std::max(audio_jump, c->pts_s - audio_end_pts);
      audio_end_pts = c->pts_s + static_cast<double>(c->samples.size()) / 16000;
    } else {
      end = std::get<EndOfStream>(ev);
    }
  }
};

}  // namespace

// A stall shorter than the read budget: the read just waits, nothing ends, and both media's
// timestamps jump by the stall's length (the server's live sources keep their clock, as a camera
// does). Nothing but the timestamps tells the reader that media is missing.
BOOST_AUTO_TEST_CASE(feeder_stall_shorter_than_the_budget_jumps_the_timestamps) {
  RtspServer& server = shared_server();
  MediaInput in(server.url(), live("tcp", 3.0));
  HangGuard guard(in, 30);
  JumpTally t;
  auto read_until = [&](auto done) {
    while (!t.end && !done()) {
      auto ev = in.next();
      if (!ev) break;
      t.add(*ev);
    }
  };
  read_until([&] { return t.video >= 25; });
  StalledFeeder stall(server);
  // Read on while stalled (the read blocks in FFmpeg, as in a source's thread).
  std::thread resumer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stall.resume();
  });
  const int before = t.video;
  read_until([&] { return t.video >= before + 50; });
  resumer.join();
  BOOST_REQUIRE(!t.end);
  const double s = stall.length_s();
  BOOST_TEST_MESSAGE("feeder stalled " << s << " s: video pts jumped " << t.video_jump
                                       << " s, audio pts " << t.audio_jump << " s");
  BOOST_CHECK(!guard.fired);
  // The valves close and open on a buffer boundary (video 40 ms, audio ≤ 21 ms) and each signal
  // waits for the server's main loop (up to ~0.1 s on a loaded 2-core machine): ±0.3 s.
  BOOST_CHECK_GE(t.video_jump, s - 0.3);
  BOOST_CHECK_LE(t.video_jump, s + 0.3);
  BOOST_CHECK_GE(t.audio_jump, s - 0.3);
  BOOST_CHECK_LE(t.audio_jump, s + 0.3);
}

// A stall longer than the budget ends the read as Stalled, like a frozen server, and the end
// says when the media really stopped: one read budget before it.
BOOST_AUTO_TEST_CASE(feeder_stall_longer_than_the_budget_ends_the_read_as_stalled) {
  RtspServer& server = shared_server();
  const double budget = 1.5;
  MediaInput in(server.url(), live("tcp", budget));
  HangGuard guard(in, 20);
  Tally t;
  t.read(in, [&] { return t.video >= 10; });
  BOOST_REQUIRE(!t.end);
  StalledFeeder stall(server);
  t.read(in, [] { return false; });
  const double to_end = std::chrono::duration<double>(t.end_time - stall.stalled_at).count();
  stall.resume();
  BOOST_REQUIRE(t.end);
  BOOST_TEST_MESSAGE("feeder stalled: end (" << end_reason_name(t.end->reason) << ") " << to_end
                                             << " s after the stall, silent for " << t.end->silent_s
                                             << " s; " << t.end->message);
  BOOST_CHECK(!guard.fired);
  BOOST_CHECK(t.end->reason == EndReason::Stalled);
  // Packets already on their way when the valves closed arrive up to ~0.1 s later; 1 s allowed
  // for scheduling on a loaded machine, as for the frozen server.
  BOOST_CHECK_GE(to_end, budget - 0.1);
  BOOST_CHECK_LE(to_end, budget + 1.0);
  // The budget is re-armed when each wait for a packet begins, right after the last packet.
  BOOST_CHECK_GE(t.end->silent_s, budget - 0.05);
  BOOST_CHECK_LE(t.end->silent_s, budget + 0.5);
}

// ---- the stream timeline (no server)

using rawflow::nodes::StreamTimeline;

BOOST_AUTO_TEST_CASE(timeline_places_the_first_connection_at_zero) {
  StreamTimeline tl;
  BOOST_CHECK_EQUAL(tl.begin_connection(std::nullopt), 0.0);
  BOOST_CHECK_CLOSE(tl.video(1000.0), 0.0, 1e-9);
  // Audio starting 0.2 s after the video (< kMaxAudioLagS): kept as it is, no gap.
  BOOST_CHECK_EQUAL(tl.audio(1000.2, 16000), 0.0);
  BOOST_CHECK_CLOSE(tl.audio_clock_s(), 1.0, 1e-9);
  BOOST_CHECK_CLOSE(tl.video(1001.0), 1.0, 1e-9);
}

BOOST_AUTO_TEST_CASE(timeline_turns_a_timestamp_jump_into_a_gap) {
  StreamTimeline tl;
  tl.begin_connection(std::nullopt);
  tl.video(50.0);
  BOOST_CHECK_EQUAL(tl.audio(50.0, 32000), 0.0);  // [0, 2) s
  // Small differences (AAC frames, jitter) are not gaps.
  BOOST_CHECK_EQUAL(tl.audio(52.1, 1600), 0.0);
  BOOST_CHECK_CLOSE(tl.audio_clock_s(), 2.1, 1e-9);
  // The feeder stopped for 1.5 s: the next audio says 53.6 s while the clock is at 2.1 s.
  const double gap = tl.audio(53.6 + 1.5, 1600);
  BOOST_CHECK_CLOSE(gap, 5.1 - 2.1, 1e-6);
  BOOST_CHECK_CLOSE(tl.audio_clock_s(), 5.1 + 0.1, 1e-6);
  // Video after the stall lands where the audio is.
  BOOST_CHECK_CLOSE(tl.video(55.1), 5.1, 1e-9);
  // Timestamps that go back are not gaps (and nothing is dropped).
  BOOST_CHECK_EQUAL(tl.audio(54.0, 1600), 0.0);
  BOOST_CHECK_CLOSE(tl.audio_clock_s(), 5.3, 1e-6);
}

BOOST_AUTO_TEST_CASE(timeline_outage_gap_brings_the_audio_to_the_next_connection) {
  StreamTimeline tl;
  tl.begin_connection(std::nullopt);
  tl.video(7.0);
  tl.audio(7.0, 16000 * 9 + 8000);                // audio until 9.5 s
  BOOST_CHECK_CLOSE(tl.video(17.0), 10.0, 1e-9);  // video until 10 s
  // 2.5 s without media, then a new connection with its own timestamps: the gap covers the
  // outage and the audio that ended 0.5 s before the video.
  const double gap = tl.begin_connection(2.5);
  BOOST_CHECK_CLOSE(gap, 3.0, 1e-6);
  BOOST_CHECK_CLOSE(tl.audio_clock_s(), 12.5, 1e-6);
  BOOST_CHECK_CLOSE(tl.video(3.0), 12.5, 1e-9);
  BOOST_CHECK_EQUAL(tl.audio(3.1, 1600), 0.0);
  BOOST_CHECK_CLOSE(tl.audio_clock_s(), 12.6, 1e-6);
}

BOOST_AUTO_TEST_CASE(timeline_without_audio_reports_the_outage_only) {
  StreamTimeline tl;
  tl.begin_connection(std::nullopt);
  tl.video(0.0);
  tl.video(30.0);
  BOOST_CHECK_CLOSE(tl.begin_connection(4.0), 4.0, 1e-9);
  BOOST_CHECK_CLOSE(tl.video(100.0), 34.0, 1e-9);
}

// ---- nodes::Source on a stalled feeder

namespace {

rawflow::StreamConfig live_stream(const std::string& url, double read_timeout_s) {
  rawflow::StreamConfig c;
  c.name = "cam";
  c.url = url;
  c.kind = rawflow::StreamKind::Live;
  c.watchdog.read_timeout_s = read_timeout_s;
  c.watchdog.open_timeout_s = 5;
  c.reconnect.initial_delay_s = 0.3;
  c.reconnect.max_delay_s = 1;
  return c;
}

// What a source reported, with the audio clock kept as the pipeline's windows keep it (samples
// delivered + gaps) and, for every video frame, how far its time is from that clock.
struct SourceLog {
  struct Gap {
    double seconds;
    std::string why;
    Clock::time_point at;
  };
  struct Skew {
    Clock::time_point at;
    double seconds;  // video frame time - audio clock
  };
  std::mutex mu;
  std::vector<Gap> gaps;
  std::vector<std::string> errors;
  std::vector<Skew> skews;
  int reconnects = 0;
  int64_t clock_samples = 0;
  int64_t samples = 0;
  int64_t audio_times_off = 0;  // chunks whose timeline_s is not the audio clock

  rawflow::nodes::SourceEvents events() {
    rawflow::nodes::SourceEvents ev;
    ev.video = [this](rawflow::media::RgbImage&&, double t) {
      std::lock_guard<std::mutex> lock(mu);
      skews.push_back({Clock::now(), t - static_cast<double>(clock_samples) / 16000});
    };
    ev.audio = [this](std::vector<float>&& s, double t) {
      std::lock_guard<std::mutex> lock(mu);
      // The source's own timeline time for the chunk is the audio clock counted here.
      if (std::abs(t - static_cast<double>(clock_samples) / 16000) > 1e-9) ++audio_times_off;
      clock_samples += static_cast<int64_t>(s.size());
      samples += static_cast<int64_t>(s.size());
    };
    ev.gap = [this](double seconds, const std::string& why) {
      std::lock_guard<std::mutex> lock(mu);
      clock_samples += std::llround(seconds * 16000);  // as pipeline/windows.cpp does
      gaps.push_back({seconds, why, Clock::now()});
    };
    ev.error = [this](const std::string& m) {
      std::lock_guard<std::mutex> lock(mu);
      errors.push_back(m);
    };
    ev.reconnect = [this] {
      std::lock_guard<std::mutex> lock(mu);
      ++reconnects;
    };
    return ev;
  }
  // Waits up to `seconds` for `done` (checked under the lock).
  template <class Done>
  bool wait(double seconds, Done done) {
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (done()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // Median skew of the frames delivered in [from, to).
  double median_skew(Clock::time_point from, Clock::time_point to) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<double> v;
    for (const Skew& s : skews)
      if (s.at >= from && s.at < to) v.push_back(s.seconds);
    BOOST_REQUIRE_MESSAGE(v.size() >= 10, "only " << v.size() << " frames to measure the skew");
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  }
};

}  // namespace

// A stall shorter than the read budget: no error, no reconnect, one gap as long as the stall
// (from the jump of the audio timestamps), and video and audio stay on one clock across it.
BOOST_AUTO_TEST_CASE(source_reports_a_short_stall_as_a_gap_without_reconnecting) {
  RtspServer& server = shared_server();
  SourceLog log;
  rawflow::nodes::Source source(live_stream(server.url(), 3.0), 0, log.events());
  const auto started = Clock::now();
  source.start();
  BOOST_REQUIRE(log.wait(20, [&] { return log.samples >= 2 * 16000; }));
  std::optional<StalledFeeder> stall;
  stall.emplace(server);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stall->resume();
  const auto resumed = *stall->resumed_at;
  const int64_t at_resume = [&] {
    std::lock_guard<std::mutex> lock(log.mu);
    return log.samples;
  }();
  BOOST_REQUIRE(log.wait(20, [&] { return log.samples >= at_resume + 2 * 16000; }));
  source.stop();
  const double s = stall->length_s();
  const double before = log.median_skew(started, stall->stalled_at);
  const double after = log.median_skew(resumed + std::chrono::milliseconds(500), Clock::now());
  std::lock_guard<std::mutex> lock(log.mu);
  BOOST_TEST_MESSAGE("short stall of " << s << " s: " << log.gaps.size() << " gap(s)"
                                       << (log.gaps.empty() ? "" : ", " + log.gaps[0].why)
                                       << "; video - audio clock: " << before << " s before, "
                                       << after << " s after");
  BOOST_CHECK(log.errors.empty());
  BOOST_CHECK_EQUAL(log.reconnects, 0);
  BOOST_CHECK_EQUAL(log.audio_times_off, 0);
  BOOST_REQUIRE_EQUAL(log.gaps.size(), 1u);
  BOOST_CHECK(log.gaps[0].why.find("timestamps jumped") != std::string::npos);
  // The timestamps' jump is the stall's length within ±0.3 s (see the MediaInput test above).
  BOOST_CHECK_GE(log.gaps[0].seconds, s - 0.3);
  BOOST_CHECK_LE(log.gaps[0].seconds, s + 0.3);
  // Without the gap the video would run ahead of the audio clock by the whole stall from here on.
  BOOST_CHECK_SMALL(after - before, 0.3);
}

// A stall longer than the read budget: the watchdog's error within the budget, reconnect
// attempts while the feeder is stalled, then one gap covering the whole stall, measured from the
// last packet (not from when the watchdog fired), and the clocks still together.
BOOST_AUTO_TEST_CASE(source_reports_a_long_stall_with_a_gap_covering_it) {
  RtspServer& server = shared_server();
  const double budget = 1.5;
  SourceLog log;
  rawflow::nodes::Source source(live_stream(server.url(), budget), 0, log.events());
  const auto started = Clock::now();
  source.start();
  BOOST_REQUIRE(log.wait(20, [&] { return log.samples >= 2 * 16000; }));
  std::optional<StalledFeeder> stall;
  stall.emplace(server);
  BOOST_REQUIRE(log.wait(budget + 2.0, [&] { return !log.errors.empty(); }));
  const double error_after = since(stall->stalled_at);
  std::this_thread::sleep_for(std::chrono::duration<double>(4.0 - error_after));
  stall->resume();
  const auto resumed = *stall->resumed_at;
  BOOST_REQUIRE(log.wait(20, [&] { return !log.gaps.empty(); }));
  const int64_t at_gap = [&] {
    std::lock_guard<std::mutex> lock(log.mu);
    return log.samples;
  }();
  BOOST_REQUIRE(log.wait(20, [&] { return log.samples >= at_gap + 2 * 16000; }));
  source.stop();
  const double s = stall->length_s();
  const double before = log.median_skew(started, stall->stalled_at);
  const double after = log.median_skew(resumed + std::chrono::milliseconds(500), Clock::now());
  std::lock_guard<std::mutex> lock(log.mu);
  const auto& gap = log.gaps[0];
  const double gap_at = std::chrono::duration<double>(gap.at - stall->stalled_at).count();
  BOOST_TEST_MESSAGE("long stall of "
                     << s << " s: error after " << error_after << " s (" << log.errors[0] << "); "
                     << log.reconnects << " reconnect(s); gap of " << gap.seconds << " s reported "
                     << gap_at << " s after the stall (" << gap.why << "); video - audio clock: "
                     << before << " s before, " << after << " s after");
  BOOST_CHECK(log.errors[0].find("stalled") != std::string::npos);
  BOOST_CHECK_GE(error_after, budget - 0.1);
  BOOST_CHECK_LE(error_after, budget + 1.0);
  BOOST_CHECK_GE(log.reconnects, 1);
  BOOST_CHECK_EQUAL(log.audio_times_off, 0);
  BOOST_CHECK(gap.why.find("reconnected") != std::string::npos);
  BOOST_CHECK(gap.at >= resumed);
  // Covers the stall: the last packet came at most ~0.1 s after the valves closed, and nothing
  // came before they opened again. Not longer than the time since the media stopped.
  BOOST_CHECK_GE(gap.seconds, s - 0.2);
  BOOST_CHECK_LE(gap.seconds, gap_at + 0.1);
  BOOST_CHECK_SMALL(after - before, 0.3);
}
