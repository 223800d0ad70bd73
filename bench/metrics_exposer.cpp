// What prometheus-cpp's pull exposer (Debian prometheus-cpp 1.0.1 on civetweb 1.15) would change
// for rawflow's /metrics, checked rather than assumed (docs/metrics.md, "Why /metrics is not
// prometheus-cpp's exposer"): the Content-Type it sends, the families it adds to every scrape,
// whether it can listen on IPv6 (`metrics.http.listen: '[::1]:9464'` is documented), and how long
// stopping it takes with an idle client connected. Build and run (bench/metrics_registry.sh
// measures the registry itself):
//
//   g++ -std=c++20 -O2 $(pkg-config --cflags cpp-httplib) bench/metrics_exposer.cpp \
//     -o /tmp/exposer -lprometheus-cpp-pull -lprometheus-cpp-core -lcivetweb -lcpp-httplib \
//     -lpthread && /tmp/exposer
#include <arpa/inet.h>
#include <civetweb.h>
#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

int main() {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("rawflow_video_frames_in_total")
      .Help("Video frames decoded from the source.")
      .Register(*registry)
      .Add({{"stream", "lobby"}})
      .Increment(7);

  auto exposer = std::make_unique<prometheus::Exposer>("127.0.0.1:0", 2);
  exposer->RegisterCollectable(registry, "/metrics");
  const int port = exposer->GetListeningPorts().at(0);
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  std::printf("Content-Type: %s\n", res->get_header_value("Content-Type").c_str());
  std::istringstream body(res->body);
  std::printf("families served:");
  for (std::string line; std::getline(body, line);)
    if (line.rfind("# TYPE ", 0) == 0) std::printf(" %s;", line.substr(7).c_str());
  std::printf("\n");
  std::printf("civetweb built with IPv6: %s\n", mg_check_feature(8) ? "yes" : "no");
  try {
    prometheus::Exposer v6("[::1]:0", 2);
    std::printf("listen [::1]:0: ok\n");
  } catch (const std::exception& e) {
    std::printf("listen [::1]:0: %s\n", e.what());
  }

  // stop with a client that connected and said nothing
  const int idle = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  exposer.reset();
  std::printf("stop with an idle connection: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  ::close(idle);
  return 0;
}
