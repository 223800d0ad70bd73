#!/usr/bin/env bash
# Builds llama.cpp's llama-bench natively (-DGGML_NATIVE=ON) from the exact source that
# node-llama-cpp 3.21.1 was built from (the git bundle it ships), so the benchmark peer is the
# same llama.cpp revision as the parity reference, compiled for this CPU. The native build is
# the stronger peer: its BF16 prefill was ~2x the prebuilt npm library's on this machine kind.
#
# Usage: bench/llama_native.sh                        # build if needed, print the llama-bench path
#        bench/llama_native.sh --force                # rebuild even if llama-bench exists
#        bench/llama_native.sh --target llama-server  # the same for llama-server (with mtmd:
#                                                     # --mmproj; bench/live_vs_llama_server.sh)
# Env:   LLAMA_NATIVE_DIR  checkout + build location (default ~/.cache/rawflow/llama-native;
#                          kept outside the repo on purpose: ~35 MB source + build tree)
#        LLAMA_NATIVE_JOBS parallel compile jobs (default 2; the machine has 2 cores)
#        RAWFLOW_NPM_DIR   directory holding node_modules (default <repo>/tests/npm)
# Takes ~7 minutes on 2 cores the first time; later runs return at once.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${script_dir}/.." && pwd)"
npm_dir="${RAWFLOW_NPM_DIR:-${repo_dir}/tests/npm}"
bundle="${npm_dir}/node_modules/node-llama-cpp/llama/gitRelease.bundle"
native_dir="${LLAMA_NATIVE_DIR:-${HOME}/.cache/rawflow/llama-native}"
src_dir="${native_dir}/src"
build_dir="${native_dir}/build"
jobs="${LLAMA_NATIVE_JOBS:-2}"
target=llama-bench
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1; shift ;;
    --target) target="$2"; shift 2 ;;
    *) echo "usage: $0 [--force] [--target llama-bench|llama-server]" >&2; exit 2 ;;
  esac
done
case "${target}" in llama-bench|llama-server) ;; *) echo "$0: unknown target ${target}" >&2; exit 2 ;; esac
bench_bin="${build_dir}/bin/${target}"

if [[ ! -f "${bundle}" ]]; then
  echo "llama_native.sh: ${bundle} not found; run 'npm ci' in ${npm_dir} first" >&2
  exit 1
fi

bundle_commit="$(git bundle list-heads "${bundle}" | awk '$2 == "HEAD" {print $1}')"
if [[ -z "${bundle_commit}" ]]; then
  echo "llama_native.sh: cannot read HEAD from ${bundle}" >&2
  exit 1
fi

# A checkout from an older node-llama-cpp would silently benchmark the wrong revision.
if [[ -d "${src_dir}/.git" ]]; then
  have_commit="$(git -C "${src_dir}" rev-parse HEAD)"
  if [[ "${have_commit}" != "${bundle_commit}" ]]; then
    echo "llama_native.sh: ${src_dir} is at ${have_commit}, bundle is ${bundle_commit}; re-cloning" >&2
    rm -rf "${src_dir}" "${build_dir}"
  fi
fi

if [[ ${force} -eq 0 && -x "${bench_bin}" && -f "${build_dir}/.rawflow-built-${target}-${bundle_commit}" ]]; then
  echo "llama_native.sh: already built (commit ${bundle_commit})" >&2
  echo "${bench_bin}"
  exit 0
fi

mkdir -p "${native_dir}"
if [[ ! -d "${src_dir}/.git" ]]; then
  git -c advice.detachedHead=false clone --quiet "${bundle}" "${src_dir}"
  git -C "${src_dir}" -c advice.detachedHead=false checkout --quiet "${bundle_commit}"
fi

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

# The compile prints ~1 MB of warnings: keep configure + build output in a log, show its tail
# only on failure.
log="${native_dir}/build.log"
# Only what the targets need: no examples, no tests, no network (the server is configured so that
# it can be built; only the target asked for is compiled).
if ! cmake -S "${src_dir}" -B "${build_dir}" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON \
  -DBUILD_SHARED_LIBS=OFF >"${log}" 2>&1; then
  tail -n 40 "${log}" >&2
  echo "llama_native.sh: configure failed, see ${log}" >&2
  exit 1
fi
echo "llama_native.sh: building ${target} (-j${jobs}, ~7 min on 2 idle cores), log ${log}" >&2
if ! cmake --build "${build_dir}" --target "${target}" -j "${jobs}" >>"${log}" 2>&1; then
  tail -n 40 "${log}" >&2
  echo "llama_native.sh: build failed, see ${log}" >&2
  exit 1
fi

touch "${build_dir}/.rawflow-built-${target}-${bundle_commit}"
echo "llama_native.sh: built ${target} at commit ${bundle_commit} ($(git -C "${src_dir}" log -1 --format='%h %cs'))" >&2
echo "${bench_bin}"
