#include "cli/engine_options.h"

#include <omp.h>

namespace rawflow::cli {

void declare_engine_options(Args& a) {
  a.option("--threads", "-t", "CPU threads (default: all cores)", "0")
      .flag("--llama-order",
            "sum every product in llama.cpp's order (slower BF16 prefill; parity checks)");
}

LoadOptions engine_options(const Args& a) {
  LoadOptions lo;
  lo.threads = static_cast<int>(a.get_int("--threads"));
  if (lo.threads < 0) throw UsageError("rawflow: `--threads` must be 0 (all cores) or more");
  lo.llama_order = a.flag_set("--llama-order");
  return lo;
}

int engine_threads() { return omp_get_max_threads(); }

}  // namespace rawflow::cli
