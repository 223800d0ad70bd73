// The graph as built (pipeline/graph.cpp) against the picture docs/architecture.md shows: the
// nodes and edges build_graph() makes for configs/rtsp-cameras.yaml (four cameras, ZeroMQ + JSONL
// sinks) must be exactly the ```graph block of the document, so neither can change without the
// other. The engine is the synthesized `tiny` model; nothing runs.
#define BOOST_TEST_MODULE test_graph
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "pipeline/graph.h"
#include "tests/test_models.h"

using namespace rawflow;

namespace {

std::string source_dir() {
  const char* d = std::getenv("RAWFLOW_SOURCE_DIR");
  BOOST_TEST_REQUIRE(d != nullptr, "RAWFLOW_SOURCE_DIR is not set (CTest sets it)");
  return d;
}

// The lines between "```graph" and the next "```".
std::string documented_graph(const std::string& path) {
  std::ifstream in(path);
  BOOST_TEST_REQUIRE(in.good(), "cannot read " + path);
  std::string line, out;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```graph") {
      inside = true;
    } else if (inside && line == "```") {
      return out;
    } else if (inside) {
      out += line + "\n";
    }
  }
  return "(" + path + " has no ```graph block)\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_documented_graph_is_the_built_graph) {
  const auto [model, mmproj] = test::tiny_model_files_with_mmproj(3, "test_graph");
  const std::string work = test::work_dir("test_graph");
  PipelineConfig cfg = load_config(
      source_dir() + "/configs/rtsp-cameras.yaml",
      {"engine.model=" + model, "engine.mmproj=" + mmproj, "engine.kv_cache_budget_mb=64",
       "outputs.zmq.endpoint=ipc://" + work + "/results.ipc",
       "outputs.jsonl.path=" + work + "/results.jsonl", "metrics.http.listen=127.0.0.1:0"});
  pipeline::Pipeline p(std::move(cfg));
  const std::string built = p.graph_map().text();
  const std::string documented = documented_graph(source_dir() + "/docs/architecture.md");
  BOOST_TEST(built == documented);
  if (built != documented) BOOST_TEST_MESSAGE("built graph:\n" << built);
}
