#pragma once
// The lines `rawflow run` and `rawflow batch` print on stderr when a pipeline run ends: busy
// times, requests and results, frames in and used, batching.
#include <string>

#include "pipeline/graph.h"

namespace rawflow::cli {

void print_run_summary(const std::string& command, const pipeline::RunSummary& s);

}  // namespace rawflow::cli
