#pragma once
// Every key of `rawflow run`'s configuration, declared once (pipeline/config_keys.cpp): one table
// row per key drives reading it, dumping it for `--print-config`, and the list docs/config.md must
// document (tests/test_config_docs.cpp). Adding a key: a member in pipeline/config.h, one row in
// config_keys.cpp, one line in docs/config.md.
#include <string>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/field_table.h"

namespace rawflow {

// A task as read: overlap_s has no member of its own in TaskConfig (it sets interval_s).
struct TaskDraft : TaskConfig {
  double overlap_s = 0;
};

// The document as read: the configuration plus what only reading needs.
struct ConfigDraft : PipelineConfig {
  int version = 1;
  StreamConfig stream_defaults;  // what every stream starts from
};

// The top-level table; the others hang below it. Reading it checks each value and the relations
// within one map (window and hop, sampling keys while greedy); config.cpp relates the sections.
const yaml_config::FieldTable<ConfigDraft>& config_fields();

// Every key as docs/config.md's tables name it under their heading: "version",
// "streams[].reconnect.max_attempts", "engine.threads", "outputs.zmq.endpoint".
std::vector<std::string> config_key_paths();

}  // namespace rawflow
