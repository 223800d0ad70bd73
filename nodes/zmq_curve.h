#pragma once
// CURVE for the ZeroMQ output: the publisher's key pair from a file, the subscribers allowed by
// their public keys, and the ZAP handler that admits them (RFC 27, ZeroMQ's authentication
// protocol). With CURVE on, results are encrypted and a subscriber whose key is not listed — or
// one that does not speak CURVE — receives nothing. Keys are Z85 text, as `zmq_curve_keypair`,
// pyzmq's `zmq.curve_keypair()` and `rawflow keygen` write them.
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "pipeline/metrics.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace rawflow::nodes {

struct CurveKeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters
};

// A new key pair (zmq_curve_keypair).
CurveKeyPair curve_keypair();

// The Z85 key in `path`: its first line, surrounding blanks ignored; `#` lines are comments.
// Throws std::runtime_error naming the file and `what` ("secret key") when it is missing,
// unreadable or not a 40-character Z85 key. The key itself is never part of a message.
std::string read_curve_key_file(const std::string& path, const std::string& what);
// The public key of a secret key (both Z85).
std::string curve_public_of(const std::string& secret_z85);
// The subscribers' public keys in `path`, one Z85 key per line (blank lines and `#` comments
// ignored), decoded to their 32 bytes. Throws std::runtime_error naming the file and the line of
// a malformed key, or when it lists none.
std::set<std::string> read_allowed_clients(const std::string& path);

// Answers ZAP requests on `context` (bound to inproc://zeromq.zap.01, which every socket of that
// context with a ZAP domain asks): CURVE clients whose public key is in `allowed` are admitted,
// every other request is denied and counted in `denied` (from the handler's thread). One per
// context.
class ZapAuthenticator {
 public:
  ZapAuthenticator(zmq::context_t& context, std::set<std::string> allowed,
                   pipeline::Counter& denied);
  ~ZapAuthenticator();  // stops and joins
  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;

 private:
  void run();
  std::set<std::string> allowed_;
  std::unique_ptr<zmq::socket_t> socket_;  // the REP socket, used by the thread only
  std::atomic<bool> stop_{false};
  pipeline::Counter& denied_;
  std::thread thread_;
};

}  // namespace rawflow::nodes
