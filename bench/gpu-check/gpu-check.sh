#!/usr/bin/env bash
# npm run gpu-check -- --build [--records-per-batch N] [--max-mib 60]
#     builds .gpu-check/ (ignored), everything the lent GPU machine needs besides the working tree:
#     node.xz, dawn.node.xz, libvulkan.so.1, measure.mjs (bench/gpu-check/measure.ts bundled),
#     cifar-10-batches-bin/ (a subset of the real CIFAR-10, sized to fit --max-mib), pytorch_reference.py.
# npm run gpu-check -- --dry-run [measure flags]
#     runs it here as it would run there: from a copy of the working tree and .gpu-check/ in /tmp,
#     PATH without node_modules, the carried node and Vulkan loader, SwiftShader, tiny sizes, PyTorch on the CPU.
# npm run gpu-check [-- measure flags]
#     bash bench/gpu-check/run.sh .gpu-check [measure flags], the command the GPU machine runs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=.gpu-check
say() { echo "gpu-check: $*" >&2; }
bytes() { stat -c %s "$@" | awk '{ sum += $1 } END { print sum }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Packs a file with xz -9 unless the packed copy is of the same source (path, size, time).
pack() {
  local source=$1 target=$2 stamp
  stamp=$(stat -L -c '%n %s %Y' "$source")
  if [[ -f $target && -f $target.source && $(cat "$target.source") == "$stamp" ]]; then return; fi
  say "xz -9 $source (a minute or so)"
  xz -9 -T2 -c "$source" >"$target.partial"
  mv "$target.partial" "$target"
  echo "$stamp" >"$target.source"
}

build() {
  local records= max_mib=60
  local archive=${CIFAR10_ARCHIVE:-../shared/datasets/cifar10/cifar-10-binary.tar.gz}
  local reference=../shared/bench/pytorch_reference.py
  while [[ $# -gt 0 ]]; do
    case $1 in
      --records-per-batch) records=$2; shift 2 ;;
      --max-mib) max_mib=$2; shift 2 ;;
      --cifar) archive=$2; shift 2 ;;
      --reference) reference=$2; shift 2 ;;
      *) say "unknown build flag $1"; exit 2 ;;
    esac
  done
  mkdir -p "$out"
  pack "$(node -p process.execPath)" "$out/node.xz"
  pack node_modules/webgpu/dist/linux-x64/dawn.node "$out/dawn.node.xz"
  cp -L /usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$out/libvulkan.so.1"
  install -m 0644 "$reference" "$out/pytorch_reference.py"
  # One file: TF.js, the webgpu backend, pino and the service's code in; node's own modules out.
  # webgpu's index.js finds dawn.node from import.meta.url, i.e. at dist/linux-x64/ beside the bundle (run.sh puts it there);
  # the require() shim lets bundled CommonJS packages load node's built-in modules.
  node_modules/.bin/esbuild bench/gpu-check/measure.ts --bundle --platform=node --format=esm --target=node20 \
    --minify-whitespace --minify-syntax --legal-comments=none --log-level=warning --outfile="$out/measure.mjs" \
    --banner:js="import { createRequire as __gpuCheckRequire } from 'node:module'; globalThis.require ??= __gpuCheckRequire(import.meta.url);"
  local tree others
  tree=$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null | awk '{ sum += $1 } END { print sum }')
  others=$(bytes "$out"/node.xz "$out"/dawn.node.xz "$out"/libvulkan.so.1 "$out"/measure.mjs "$out"/pytorch_reference.py)
  if [[ -z $records ]]; then
    # As many records per batch file (five training files and one test file) as fit, in steps of 50, at most 1,600.
    records=$(( (max_mib * 1048576 - tree - others - 262144) / (6 * 3073) / 50 * 50 ))
    (( records > 1600 )) && records=1600
    (( records < 50 )) && { say "no room for the data under $max_mib MiB"; exit 1; }
  fi
  rm -rf "$out/cifar-10-batches-bin"
  python3 bench/gpu-check/make_subset.py "$archive" "$out/cifar-10-batches-bin" "$records" >&2
  local data total
  data=$(bytes "$out"/cifar-10-batches-bin/*)
  total=$(( tree + others + data ))
  say "what travels:"
  for file in node.xz dawn.node.xz libvulkan.so.1 measure.mjs pytorch_reference.py; do
    printf '  %-24s %6s MiB\n' "$out/$file" "$(mib "$(bytes "$out/$file")")" >&2
  done
  printf '  %-24s %6s MiB (%s training + %s test images)\n' "$out/cifar-10-batches-bin/" "$(mib "$data")" $(( 5 * records )) "$records" >&2
  printf '  %-24s %6s MiB\n' "the working tree" "$(mib "$tree")" >&2
  printf '  %-24s %6s MiB (limit 64 MiB; carry: %s)\n' "total" "$(mib "$total")" "$out" >&2
  (( total <= 64 * 1048576 )) || { say "over the 64 MiB that travels: use --records-per-batch or --max-mib"; exit 1; }
}

dry_run() {
  [[ -f $out/measure.mjs ]] || build
  local copy
  copy=$(mktemp -d /tmp/gpu-check-dry.XXXXXX)
  # What the device tool copies: tracked and untracked-not-ignored files, plus the carried folder.
  git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$copy"
  cp -r "$out" "$copy/"
  mkdir -p "$copy.out"
  say "dry run in $copy (OUT=$copy.out): SwiftShader, the carried node and Vulkan loader, tiny sizes"
  (cd "$copy" && env -i HOME="$HOME" PATH=/usr/bin:/bin OUT="$copy.out" \
    VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json GPU_CHECK_NODE=carried GPU_CHECK_CARRIED_VULKAN=1 \
    bash bench/gpu-check/run.sh .gpu-check --dry-run --python /usr/bin/python3 "$@")
  say "JSON: $copy.out/gpu-check.json"
}

case ${1:-} in
  --build) shift; build "$@" ;;
  --dry-run) shift; dry_run "$@" ;;
  *) exec bash bench/gpu-check/run.sh "$out" "$@" ;;
esac
