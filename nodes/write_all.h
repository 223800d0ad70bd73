#pragma once
// Writes all of `data` to `fd`, retrying after EINTR and short writes: 0, or the errno that
// stopped it (EIO for a write of nothing). Shared by the sinks that write files by descriptor.
#include <string_view>

namespace rawflow::nodes {

int write_all(int fd, std::string_view data);

}  // namespace rawflow::nodes
