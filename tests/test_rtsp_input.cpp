#define BOOST_TEST_MODULE test_rtsp_input
// MediaInput against a live RTSP server (tests/rtsp/rtsp_server.py, GStreamer): video and audio
// over TCP and UDP, the watchdog on a frozen server, a killed server, the open budget, interrupt().
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
  void freeze() { ::kill(pid_, SIGSTOP); }
  void thaw() { ::kill(pid_, SIGCONT); }
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
  void read_ready_line(double timeout_s) {
    const auto start = Clock::now();
    std::string line;
    while (line.find('\n') == std::string::npos) {
      const int left_ms = static_cast<int>((timeout_s - since(start)) * 1000);
      BOOST_REQUIRE_MESSAGE(left_ms > 0, "RTSP server not ready within " << timeout_s << " s");
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, left_ms) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out_fd_, buf, sizeof buf);
      BOOST_REQUIRE_MESSAGE(n > 0, "RTSP server exited before it was ready (see its stderr)");
      line.append(buf, static_cast<size_t>(n));
    }
    char url[256] = {};
    BOOST_REQUIRE_MESSAGE(std::sscanf(line.c_str(), "READY %d %255s", &port_, url) == 2,
                          "unexpected line from the server: " << line);
    url_ = url;
    BOOST_TEST_MESSAGE("RTSP server ready after " << since(start) << " s: " << url_);
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
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
