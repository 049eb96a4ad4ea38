# Sourced by scripts/test.sh and scripts/demo.sh (not run on its own):
# makes sure what RocksDB's build needs is installed, installing it on a
# fresh Debian machine (as root, with apt), or stops naming the missing
# packages; then sets CARGO_TARGET_DIR (default ~/.cache/meridian/target,
# outside the checkout, so later builds on the same machine, CI's
# included, reuse the RocksDB build).
#
# The caller sets `script` to its own name for messages.

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null 2>&1; then
  # libclang-dev brings libclang (bindgen) and clang's own headers (stdbool.h).
  for pkg in libclang-dev g++ make; do
    have_pkg "$pkg" || missing+=("$pkg")
  done
else
  ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=("libclang (LLVM/clang development files)")
  command -v c++ >/dev/null 2>&1 || missing+=("a C++ compiler")
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$script: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
  else
    echo "$script: missing system packages: ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian/target}"
echo "$script: build output in $CARGO_TARGET_DIR" >&2
