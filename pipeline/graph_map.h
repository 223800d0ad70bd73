#pragma once
// The graph as it was wired: its nodes and edges, recorded by the calls that make them
// (pipeline/graph.cpp), so the picture in docs/architecture.md can be checked against the code
// (tests/test_graph.cpp).
#include <string>
#include <utility>
#include <vector>

namespace rawflow::pipeline {

struct GraphMap {
  struct Node {
    std::string name, kind;  // kind: the TBB node type ("async_node", "multifunction_node", ...)
  };
  struct Edge {
    std::string from, to;  // "name" or "name.port" for a multifunction node's output port
  };
  std::vector<Node> nodes;  // in the order they were made
  std::vector<Edge> edges;  // in the order they were made

  // One line per node ("node NAME KIND") then one per edge ("edge FROM -> TO").
  std::string text() const {
    std::string s;
    for (const Node& n : nodes) s += "node " + n.name + " " + n.kind + "\n";
    for (const Edge& e : edges) s += "edge " + e.from + " -> " + e.to + "\n";
    return s;
  }
};

}  // namespace rawflow::pipeline
