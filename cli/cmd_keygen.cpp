// `rawflow keygen NAME`: a ZeroMQ CURVE key pair for the encrypted, authenticated output
// (outputs.zmq.curve): NAME.key holds the secret key (mode 0600), NAME.pub the public one.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "nodes/zmq_curve.h"

namespace rawflow::cli {
namespace {

// Creates `path` with `mode` (never over an existing file: a key is not silently replaced).
void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    throw UsageError("rawflow keygen: cannot create " + path + ": " + std::strerror(errno) +
                     (errno == EEXIST ? " (a key is never replaced: remove it first)" : ""));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (::close(fd) != 0 || !ok) throw UsageError("rawflow keygen: cannot write " + path);
}

}  // namespace

int cmd_keygen(const CommandArgs& argv) {
  Args a("keygen", "NAME");
  a.positional("NAME", "writes NAME.key (secret key, mode 0600) and NAME.pub (public key)");
  if (!a.parse_or_help(argv)) return 0;
  if (a.positionals().size() != 1) throw UsageError("rawflow keygen: give one NAME\n" + a.help());
  const std::string name = a.positionals()[0];
  const nodes::CurveKeyPair keys = nodes::curve_keypair();
  write_new_file(
      name + ".key",
      "# ZeroMQ CURVE secret key (rawflow keygen): keep it secret\n" + keys.secret_z85 + "\n",
      0600);
  write_new_file(name + ".pub",
                 "# ZeroMQ CURVE public key (rawflow keygen)\n" + keys.public_z85 + "\n", 0644);
  std::printf("%s\n", keys.public_z85.c_str());
  std::fprintf(stderr, "rawflow keygen: wrote %s.key (secret) and %s.pub (public)\n", name.c_str(),
               name.c_str());
  return 0;
}

}  // namespace rawflow::cli
