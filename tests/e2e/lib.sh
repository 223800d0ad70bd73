# Helpers the end-to-end scripts source (not a test: the test glob takes test_*.sh only).

# A TCP port on 127.0.0.1 that is free now (the kernel's pick; released before it is used).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
