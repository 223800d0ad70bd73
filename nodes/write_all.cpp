#include "nodes/write_all.h"

#include <unistd.h>

#include <cerrno>

namespace rawflow::nodes {

int write_all(int fd, std::string_view data) {
  for (size_t at = 0; at < data.size();) {
    const ssize_t n = ::write(fd, data.data() + at, data.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    at += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace rawflow::nodes
