#!/usr/bin/env bash
# The GPU check's one command on the lent machine, from the repository root:
#
#   bash bench/gpu-check/run.sh .gpu-check [measure flags, e.g. --budget-seconds 200]
#
# FOLDER is what `npm run gpu-check -- --build` made (carried there). Unpacks node and dawn.node
# to /tmp, finds a Vulkan loader and the NVIDIA Vulkan driver, and runs the bundled measure.ts.
# Node: the machine's when it is 20 or newer, else the carried one (GPU_CHECK_NODE=carried forces
# it). libvulkan.so.1: the machine's when ldconfig knows one, else the carried one
# (GPU_CHECK_CARRIED_VULKAN=1 forces it). Vulkan driver: VK_DRIVER_FILES names NVIDIA's ICD file
# when one exists; otherwise VK_ICD_FILENAMES/VK_DRIVER_FILES stay as set (SwiftShader in the dry run).
set -euo pipefail
folder=.gpu-check
if [[ $# -gt 0 && $1 != --* ]]; then folder=$1; shift; fi
folder=$(cd "$folder" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/gpu-check.XXXXXX)
say() { echo "run.sh: $*" >&2; }

unxz_to() { # FILE.xz DEST: xz when there is one, else Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}

# webgpu's index.js, bundled into measure.mjs, loads dist/linux-x64/dawn.node beside the bundle.
mkdir -p "$work/dist/linux-x64"
cp "$folder/measure.mjs" "$work/"
unxz_to "$folder/dawn.node.xz" "$work/dist/linux-x64/dawn.node"

node=
if [[ ${GPU_CHECK_NODE:-} != carried ]] && command -v node >/dev/null \
  && node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  node=$(command -v node)
else
  unxz_to "$folder/node.xz" "$work/node"
  chmod +x "$work/node"
  node=$work/node
fi
say "node $("$node" --version) at $node"

if [[ ${GPU_CHECK_CARRIED_VULKAN:-} == 1 ]] || ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  mkdir -p "$work/lib"
  cp "$folder/libvulkan.so.1" "$work/lib/"
  export LD_LIBRARY_PATH=$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  say "the carried Vulkan loader: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
else
  say "the machine's Vulkan loader: $(ldconfig -p | grep -m1 'libvulkan\.so\.1 ' | sed 's/.*=> //')"
fi

icd=
for candidate in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [[ -f $candidate ]]; then icd=$candidate; break; fi
done
if [[ -z $icd && -z ${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-} ]] && ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia\.so\.0 '; then
  # The driver's Vulkan library is there without its ICD file (some containers): name it ourselves.
  icd=$work/nvidia_icd.json
  echo '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3"}}' >"$icd"
fi
if [[ -n $icd ]]; then
  export VK_DRIVER_FILES=$icd
  say "VK_DRIVER_FILES=$icd"
else
  say "no NVIDIA Vulkan ICD file found; VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
fi
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true; fi
say "$(nproc) cores; python3: $(command -v python3 || echo none)"

status=0
"$node" "$work/measure.mjs" --data "$folder/cifar-10-batches-bin" --reference "$folder/pytorch_reference.py" \
  --pytorch-driver "$here/pytorch_cuda.py" "$@" || status=$?
rm -rf "$work"
exit "$status"
