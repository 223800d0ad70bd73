#pragma once
// Prometheus scrape endpoint: `GET /metrics` (the registry as text format 0.0.4) and
// `GET /healthz` on a small HTTP server with its own threads, so a slow scraper never touches the
// pipeline.
#include <memory>
#include <string>

#include "pipeline/metrics.h"

namespace rawflow::nodes {

class MetricsServer {
 public:
  // Binds host:port now (port 0 = any free port; host "" = all interfaces; "[::1]" or "::1" for
  // IPv6) and starts serving; std::runtime_error naming host:port if it cannot bind. `registry`
  // must outlive the server.
  MetricsServer(const pipeline::MetricsRegistry& registry, const std::string& host, int port);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const;  // the bound port (the chosen one when 0 was asked)
  const std::string& host() const;
  // Stops accepting, ends open connections and joins the threads. Idempotent; returns within
  // about a second even with an idle client connected.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rawflow::nodes
