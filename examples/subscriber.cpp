// Print rawflow results published over ZeroMQ (docs/results.md): the C++ twin of subscriber.py.
//
//   rawflow_subscriber --endpoint tcp://127.0.0.1:5556 --topic lobby/
//
// Each message is two frames: the topic ("<stream>/<task>" by default) and one JSON object.
// Subscriptions match topic prefixes: "lobby/" is every task of stream lobby, "" is everything.
// Depends on cppzmq and nlohmann_json only, not on rawflow's libraries.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace {

constexpr int kSchemaVersion = 1;  // the schema this program was written for

struct Args {
  std::string endpoint = "tcp://127.0.0.1:5556";
  std::vector<std::string> topics;
  bool finals_only = false;
  bool json = false;
  long count = 0;  // 0 = until interrupted
};

void usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " [--endpoint URL] [--topic PREFIX]... [--finals-only] [--json] [--count N]\n";
}

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (arg == "--endpoint" || arg == "--topic" || arg == "--count") {
      const char* v = value();
      if (!v) {
        std::cerr << arg << " needs a value\n";
        return false;
      }
      if (arg == "--endpoint") a.endpoint = v;
      if (arg == "--topic") a.topics.push_back(v);
      if (arg == "--count") {
        char* end = nullptr;
        a.count = std::strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || a.count < 0) {
          std::cerr << "--count needs a number >= 0, got '" << v << "'\n";
          return false;
        }
      }
    } else if (arg == "--finals-only") {
      a.finals_only = true;
    } else if (arg == "--json") {
      a.json = true;
    } else {
      std::cerr << "unknown argument " << arg << "\n";
      return false;
    }
  }
  return true;
}

std::string describe(const std::string& topic, const nlohmann::json& e) {
  const std::string kind = e.value("kind", "");
  char span[64];
  std::snprintf(span, sizeof span, "%.1f\u2013%.1fs", e.value("media_start", 0.0),
                e.value("media_end", 0.0));
  std::string when = span;
  // Live streams: when that media arrived (UTC, "2026-12-01T13:56:10.123Z" → "13:56:10").
  if (const std::string utc = e.value("media_start_utc", ""); utc.size() >= 19)
    when += " @ " + utc.substr(11, 8);
  if (kind == "final") return topic + " [" + when + "] " + e.value("text", "");
  if (kind == "partial") return topic + " [" + when + " partial] " + e.value("text", "");
  if (kind == "gap") return topic + " [gap " + when + "]";
  if (kind == "error") return topic + " [error] " + e.value("error", "");
  if (kind == "stats")
    return topic + " [stats] " + e.value("stats", nlohmann::json::object()).dump();
  // A newer publisher may add kinds: show them rather than fail (docs/results.md, compatibility).
  return topic + " [" + kind + "] " + e.value("text", "");
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, args)) {
    usage(argv[0]);
    return 2;
  }
  if (args.topics.empty()) args.topics.push_back("");

  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::sub);
  socket.set(zmq::sockopt::linger, 0);
  try {
    socket.connect(args.endpoint);
  } catch (const zmq::error_t& e) {
    std::cerr << "cannot connect to " << args.endpoint << ": " << e.what() << "\n";
    return 1;
  }
  for (const auto& prefix : args.topics) socket.set(zmq::sockopt::subscribe, prefix);

  bool warned = false;
  for (long printed = 0; args.count <= 0 || printed < args.count;) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket, std::back_inserter(frames))) continue;
    if (frames.size() != 2) {
      std::cerr << "ignoring a message of " << frames.size() << " frames\n";
      continue;
    }
    const std::string topic = frames[0].to_string();
    const std::string body = frames[1].to_string();
    const nlohmann::json event = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded()) {
      std::cerr << "ignoring a message that is not JSON on topic " << topic << "\n";
      continue;
    }
    if (event.value("schema", 0) > kSchemaVersion && !warned) {
      std::cerr << "note: schema " << event["schema"] << " is newer than " << kSchemaVersion
                << "; unknown fields are ignored\n";
      warned = true;
    }
    if (args.finals_only && event.value("kind", "") == "partial") continue;
    std::cout << (args.json ? body : describe(topic, event)) << std::endl;
    ++printed;
  }
  return 0;
}
