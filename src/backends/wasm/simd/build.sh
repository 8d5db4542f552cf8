#!/bin/sh
# Builds convolutions.wasm (or the file named as the first argument) from convolutions.c, with
# Debian's clang and lld (apt-get install clang lld). The module must import the backend's memory
# and keep nothing of its own in it: a build that reads or writes a global (a stack pointer) or
# carries data is refused.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
output="${1:-$here/convolutions.wasm}"
clang --target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all \
  -o "$output" "$here/convolutions.c"
chmod 0644 "$output"
objdump="$(command -v llvm-objdump || command -v llvm-objdump-14)"
if "$objdump" -d "$output" | grep -q 'global\.[gs]et'; then
  echo "$output uses a global (a stack in memory): keep every working value in locals" >&2
  exit 1
fi
if "$objdump" -h "$output" | grep -q ' DATA '; then
  echo "$output carries a data section: it must keep nothing in the backend's memory" >&2
  exit 1
fi
