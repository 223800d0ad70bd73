// The result-event target: an event with arbitrary field values becomes one JSON line that parses
// back to the same values (subscribers parse it; docs/results.md is its schema).
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz/fuzz_targets.h"
#include "fuzz/utf8.h"
#include "pipeline/result.h"

namespace rawflow::fuzz {

namespace {

// Takes fields from the front of the input; past its end every field is zero or empty.
class Bytes {
 public:
  Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  template <class T>
  T scalar() {
    T v{};
    if (n_ >= sizeof v) {
      std::memcpy(&v, d_, sizeof v);
      d_ += sizeof v;
      n_ -= sizeof v;
    }
    return v;
  }
  // Up to the next NUL (or the end).
  std::string text() {
    const auto* begin = reinterpret_cast<const char*>(d_);
    const auto* nul = static_cast<const uint8_t*>(std::memchr(d_, 0, n_));
    const size_t len = nul ? static_cast<size_t>(nul - d_) : n_;
    d_ += len + (nul ? 1 : 0);
    n_ -= len + (nul ? 1 : 0);
    return std::string(begin, len);
  }

 private:
  const uint8_t* d_;
  size_t n_;
};

void expect(bool ok, const std::string& what, const std::string& line) {
  if (!ok) fail("result_event", what + "\n--- line: " + line);
}

void expect_number(const nlohmann::json& j, double v, const std::string& key,
                   const std::string& line) {
  // JSON has no NaN or infinity: nlohmann writes null for them.
  if (std::isfinite(v))
    expect(j.is_number() && j.get<double>() == v, key + " does not round-trip", line);
  else
    expect(j.is_null(), key + " (not finite) is not null", line);
}

void expect_text(const nlohmann::json& j, const std::string& v, const std::string& key,
                 const std::string& line) {
  expect(j.is_string(), key + " is not a string", line);
  // Bad UTF-8 is replaced (U+FFFD) so the line stays JSON; valid text comes back as it was.
  if (valid_utf8(v)) expect(j.get<std::string>() == v, key + " does not round-trip", line);
}

}  // namespace

void result_event(const uint8_t* data, size_t size) {
  using pipeline::ResultEvent;
  Bytes in(data, size);
  ResultEvent e;
  e.kind = static_cast<ResultEvent::Kind>(in.scalar<uint8_t>() % 6);
  e.request_id = in.scalar<uint64_t>();
  e.media_start_s = in.scalar<double>();
  e.media_end_s = in.scalar<double>();
  e.queue_ms = in.scalar<double>();
  e.prompt_tokens = in.scalar<int64_t>();
  e.generated_tokens = in.scalar<int64_t>();
  e.complete = in.scalar<uint8_t>() & 1;
  e.stream = in.text();
  e.task = in.text();
  e.text = in.text();
  e.model = in.text();
  e.error = in.text();
  e.media_start_utc = in.text();
  e.stats_json = in.text();

  std::string line;
  try {
    line = pipeline::to_json(e);
  } catch (const std::invalid_argument&) {
    // The one documented refusal: a stats event whose stats_json is not a JSON object.
    if (e.kind != ResultEvent::Kind::Stats)
      fail("result_event", "to_json refused an event that is not a stats event");
    return;
  }
  expect(line.find('\n') == std::string::npos, "the line holds a newline", line);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& err) {
    fail("result_event", std::string("the line is not JSON: ") + err.what() + "\n" + line);
  }
  expect(j.value("schema", 0) == pipeline::kResultSchemaVersion, "schema", line);
  expect(j.value("kind", "") == pipeline::kind_name(e.kind), "kind", line);
  expect(j.value("request_id", uint64_t{0}) == e.request_id, "request_id", line);
  expect_text(j["stream"], e.stream, "stream", line);
  expect_text(j["task"], e.task, "task", line);
  expect_text(j["text"], e.text, "text", line);
  expect_text(j["model"], e.model, "model", line);
  expect_number(j["media_start"], e.media_start_s, "media_start", line);
  expect_number(j["media_end"], e.media_end_s, "media_end", line);
  expect_number(j["timing_ms"]["queue"], e.queue_ms, "timing_ms.queue", line);
  expect(j["tokens"]["prompt"] == e.prompt_tokens, "tokens.prompt", line);
  expect(j["tokens"]["generated"] == e.generated_tokens, "tokens.generated", line);
  if (!e.media_start_utc.empty()) expect_text(j["media_start_utc"], e.media_start_utc, "utc", line);
  if (e.kind == ResultEvent::Kind::Error) expect_text(j["error"], e.error, "error", line);
  if (e.kind == ResultEvent::Kind::End) expect(j["complete"] == e.complete, "complete", line);
  if (e.kind == ResultEvent::Kind::Stats)
    expect(e.stats_json.empty() ? j["stats"] == nlohmann::json::object()
                                : j["stats"] == nlohmann::json::parse(e.stats_json),
           "stats does not round-trip", line);
}

}  // namespace rawflow::fuzz
