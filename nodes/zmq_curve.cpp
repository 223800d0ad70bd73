#include "nodes/zmq_curve.h"

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <vector>
#include <zmq.hpp>

#include "model/gemma4/chat.h"

namespace rawflow::nodes {
namespace {

constexpr size_t kZ85KeyLength = 40;  // 32 bytes
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr int kPollMs = 100;  // how soon the handler notices a stop

// The 32 bytes of a Z85 key, or "" when it is not one.
std::string decode_key(const std::string& z85) {
  if (z85.size() != kZ85KeyLength) return "";
  uint8_t bytes[32];
  if (!zmq_z85_decode(bytes, z85.c_str())) return "";
  return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
}

// The non-comment, non-blank lines of `path` with their line numbers.
std::vector<std::pair<int, std::string>> key_lines(const std::string& path,
                                                   const std::string& what) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(what + " file '" + path + "': cannot be read");
  std::vector<std::pair<int, std::string>> lines;
  std::string line;
  for (int n = 1; std::getline(in, line) && n <= 100000; ++n) {
    line = trim_whitespace(line);
    if (!line.empty() && line[0] != '#') lines.emplace_back(n, line);
  }
  return lines;
}

}  // namespace

CurveKeyPair curve_keypair() {
  char pub[kZ85KeyLength + 1], sec[kZ85KeyLength + 1];
  if (zmq_curve_keypair(pub, sec) != 0)
    throw std::runtime_error("cannot make a CURVE key pair: " +
                             std::string(zmq_strerror(zmq_errno())));
  return {pub, sec};
}

std::string read_curve_key_file(const std::string& path, const std::string& what) {
  const auto lines = key_lines(path, what);
  if (lines.empty() || decode_key(lines.front().second).empty())
    throw std::runtime_error(what + " file '" + path +
                             "': no CURVE key in it (a line of 40 Z85 characters)");
  return lines.front().second;
}

std::string curve_public_of(const std::string& secret_z85) {
  char pub[kZ85KeyLength + 1];
  if (zmq_curve_public(pub, secret_z85.c_str()) != 0)
    throw std::runtime_error("not a CURVE secret key");
  return pub;
}

std::set<std::string> read_allowed_clients(const std::string& path) {
  std::set<std::string> keys;
  for (const auto& [n, line] : key_lines(path, "allowed clients")) {
    const std::string key = decode_key(line);
    if (key.empty())
      throw std::runtime_error("allowed clients file '" + path + "', line " + std::to_string(n) +
                               ": not a CURVE public key (40 Z85 characters)");
    keys.insert(key);
  }
  if (keys.empty())
    throw std::runtime_error("allowed clients file '" + path +
                             "': lists no key, so no subscriber could receive anything");
  return keys;
}

ZapAuthenticator::ZapAuthenticator(zmq::context_t& context, std::set<std::string> allowed,
                                   pipeline::Counter& denied)
    : allowed_(std::move(allowed)),
      denied_(denied),
      socket_(std::make_unique<zmq::socket_t>(context, zmq::socket_type::rep)) {
  socket_->set(zmq::sockopt::linger, 0);
  try {
    socket_->bind(kZapEndpoint);  // before any socket of the context needs it
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("ZeroMQ authentication handler: ") + e.what());
  }
  thread_ = std::thread([this] { run(); });
}

ZapAuthenticator::~ZapAuthenticator() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

// RFC 27: request [version "1.0", request id, domain, address, identity, mechanism,
// credentials...]; reply [version, request id, status code, status text, user id, metadata].
void ZapAuthenticator::run() {
  zmq::socket_t& socket = *socket_;
  while (!stop_) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(kPollMs)) <= 0) continue;
    std::vector<zmq::message_t> parts;
    for (bool more = true; more;) {
      zmq::message_t m;
      if (!socket.recv(m)) break;
      more = m.more();
      parts.push_back(std::move(m));
    }
    if (parts.size() < 6) continue;  // not a ZAP request: nothing sensible to answer
    const std::string mechanism = parts[5].to_string();
    const bool ok =
        mechanism == "CURVE" && parts.size() >= 7 && allowed_.count(parts[6].to_string()) > 0;
    if (!ok) denied_.inc();
    socket.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    socket.send(parts[1], zmq::send_flags::sndmore);
    socket.send(zmq::buffer(std::string(ok ? "200" : "400")), zmq::send_flags::sndmore);
    socket.send(zmq::buffer(std::string(ok ? "OK" : "not an allowed client key")),
                zmq::send_flags::sndmore);
    socket.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
    socket.send(zmq::str_buffer(""), zmq::send_flags::none);
  }
}

}  // namespace rawflow::nodes
