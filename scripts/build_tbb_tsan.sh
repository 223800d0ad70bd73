#!/usr/bin/env bash
# oneTBB built with ThreadSanitizer, for rawflow's TSan build (scripts/test.sh). Debian's libtbb is
# not instrumented, so TSan cannot see the synchronisation of its task queues and reports every
# message a source thread hands to a TBB worker as a race. This builds the same release Debian
# ships (2021.8.0, source from the Debian archive, checksum from its .dsc) with
# -DTBB_SANITIZE=thread: only libtbb, no tests, no allocator.
#   scripts/build_tbb_tsan.sh PREFIX      → PREFIX/lib/cmake/TBB (for -DTBB_DIR)
set -euo pipefail
prefix=${1:?usage: scripts/build_tbb_tsan.sh PREFIX}
version=2021.8.0
sha256=7e9111b8bb59c8800bf6d0b06afe7b0891937443d2dae1ee1101c8e2ede6a7ef
url=http://deb.debian.org/debian/pool/main/o/onetbb/onetbb_${version}.orig.tar.xz
stamp=$prefix/.built-$version-tsan
[ -f "$stamp" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/src.tar.xz" "$url" ||
  { echo "build_tbb_tsan: cannot download $url" >&2; exit 1; }
echo "$sha256  $work/src.tar.xz" | sha256sum -c --quiet - ||
  { echo "build_tbb_tsan: $url does not match its checksum" >&2; exit 1; }
tar -xf "$work/src.tar.xz" -C "$work"
cmake -S "$work/oneTBB-$version" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTBB_SANITIZE=thread -DTBB_TEST=OFF -DTBBMALLOC_BUILD=OFF -DTBB_STRICT=OFF \
  -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
ninja -C "$work/build" -j "$(nproc)" install >/dev/null
touch "$stamp"
