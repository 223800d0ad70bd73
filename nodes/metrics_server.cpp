#include "nodes/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace rawflow::nodes {

struct MetricsServer::Impl {
  const pipeline::MetricsRegistry& registry;
  std::string host;
  int port = 0;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listening_done{false};
  std::mutex stop_mutex;
  bool stopped = false;

  explicit Impl(const pipeline::MetricsRegistry& r) : registry(r) {}
};

MetricsServer::MetricsServer(const pipeline::MetricsRegistry& registry, const std::string& host,
                             int port)
    : impl_(std::make_unique<Impl>(registry)) {
  Impl& d = *impl_;
  d.host = host;
  if (d.host.size() >= 2 && d.host.front() == '[' && d.host.back() == ']')
    d.host = d.host.substr(1, d.host.size() - 2);
  if (d.host.empty()) d.host = "0.0.0.0";
  const std::string where = "metrics http " + d.host + ":" + std::to_string(port) + ": ";
  if (port < 0 || port > 65535) throw std::invalid_argument(where + "port must be in [0, 65535]");

  httplib::Server& svr = d.server;
  // A scrape is one request; short keep-alive and timeouts let stop() end idle connections
  // within about a second instead of httplib's 5 s defaults.
  svr.set_keep_alive_max_count(1);
  svr.set_keep_alive_timeout(1);
  svr.set_read_timeout(2, 0);
  svr.set_write_timeout(2, 0);
  svr.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // httplib's default sets SO_REUSEPORT, which lets a second process bind the same port and
  // take half the scrapes; SO_REUSEADDR alone still allows a quick restart.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  svr.Get("/metrics", [&d](const httplib::Request&, httplib::Response& res) {
    res.set_content(d.registry.render_prometheus(), pipeline::kPrometheusContentType);
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });

  if (port == 0) {
    d.port = svr.bind_to_any_port(d.host);
    if (d.port < 0) throw std::runtime_error(where + "cannot bind any port");
  } else {
    if (!svr.bind_to_port(d.host, port))
      throw std::runtime_error(where + "cannot bind (address in use or not local?)");
    d.port = port;
  }
  d.thread = std::thread([&d] {
    d.server.listen_after_bind();
    d.listening_done = true;
  });
  // httplib's stop() does nothing before the loop runs; wait for it so stop() always ends it.
  while (!d.server.is_running() && !d.listening_done)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!d.server.is_running()) {
    d.thread.join();
    throw std::runtime_error(where + "the server stopped at start");
  }
}

MetricsServer::~MetricsServer() { stop(); }

int MetricsServer::port() const { return impl_->port; }
const std::string& MetricsServer::host() const { return impl_->host; }

void MetricsServer::stop() {
  Impl& d = *impl_;
  std::lock_guard lock(d.stop_mutex);
  if (d.stopped) return;
  d.stopped = true;
  d.server.stop();
  d.thread.join();
}

}  // namespace rawflow::nodes
