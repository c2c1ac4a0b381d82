#!/usr/bin/env bash
# Spark resource discovery script for NVIDIA GPUs, from sparkinfer's gpu-scheduling module.
#
# Prints the GPUs this process can use as one line of Spark's resource JSON:
#   {"name":"gpu","addresses":["0","1"]}
# and {"name":"gpu","addresses":[]} when there is none (no nvidia-smi, no driver, no GPU), so that
# a machine without GPUs reports none instead of failing the discovery.
#
# Use it with:
#   spark.executor.resource.gpu.discoveryScript=/path/to/sparkinfer-gpu-discovery.sh
#   spark.worker.resource.gpu.discoveryScript=/path/to/sparkinfer-gpu-discovery.sh   (standalone)
# Extract it from the jar with:
#   java -cp sparkinfer-gpu-scheduling.jar io.github.sparkinfer.device.DiscoveryScripts <folder>
#
# The addresses are CUDA device ordinals, which sparkinfer gives ONNX Runtime as device_id:
# nvidia-smi's indices (nvidia-smi --query-gpu=index --format=csv,noheader). When
# CUDA_VISIBLE_DEVICES is set, CUDA numbers the devices it names 0, 1, ... in its order and stops
# at the first entry that names no GPU; the addresses are then those numbers.
#
# Environment:
#   SPARKINFER_GPU_RESOURCE_NAME  the resource name to print (default gpu): the <name> of
#                                 spark.*.resource.<name>.discoveryScript
#   SPARKINFER_NVIDIA_SMI         the nvidia-smi command (default nvidia-smi, looked up on PATH)

# ${array[@]+"${array[@]}"} below expands an empty array to nothing: bash before 4.4 (CentOS 7
# has 4.2) calls it unbound under set -u.
set -u

name="${SPARKINFER_GPU_RESOURCE_NAME:-gpu}"
smi="${SPARKINFER_NVIDIA_SMI:-nvidia-smi}"

if [[ ! "$name" =~ ^[A-Za-z0-9._-]+$ ]]; then
  echo "sparkinfer-gpu-discovery: invalid resource name '$name' in SPARKINFER_GPU_RESOURCE_NAME:" \
    "use letters, digits, '.', '_' and '-'" >&2
  exit 1
fi

# Prints the JSON line for the addresses given as arguments.
print_resource() {
  local addresses="" address
  for address in "$@"; do
    addresses="${addresses:+$addresses,}\"$address\""
  done
  printf '{"name":"%s","addresses":[%s]}\n' "$name" "$addresses"
}

indices=()
if ! command -v "$smi" >/dev/null 2>&1; then
  echo "sparkinfer-gpu-discovery: $smi not found; reporting no GPU" >&2
elif ! output="$("$smi" --query-gpu=index --format=csv,noheader)"; then
  # nvidia-smi fails when the driver is missing or broken; its message went to the log above.
  echo "sparkinfer-gpu-discovery: $smi failed; reporting no GPU" >&2
else
  while IFS= read -r line; do
    line="${line//[[:space:]]/}"
    # Anything else ("No devices were found", warnings) is not an index.
    if [[ "$line" =~ ^[0-9]+$ ]]; then
      indices+=("$line")
    fi
  done <<< "$output"
fi

if [[ -n "${CUDA_VISIBLE_DEVICES+set}" ]]; then
  visible=0
  IFS=',' read -r -a entries <<< "$CUDA_VISIBLE_DEVICES"
  for entry in ${entries[@]+"${entries[@]}"}; do
    entry="${entry//[[:space:]]/}"
    if [[ "$entry" =~ ^[0-9]+$ ]]; then
      found=0
      for index in ${indices[@]+"${indices[@]}"}; do
        if [[ "$index" == "$entry" ]]; then
          found=1
        fi
      done
      if (( ! found )); then
        break
      fi
    elif [[ ! "$entry" =~ ^(GPU|MIG)- ]]; then
      # "-1", "NoDevFiles" and other text name no GPU. UUIDs (GPU-..., MIG-...) are taken as
      # naming one, as nvidia-smi's index query cannot check them.
      break
    fi
    visible=$((visible + 1))
  done
  if (( visible > ${#indices[@]} )); then
    visible=${#indices[@]}
  fi
  indices=()
  for ((ordinal = 0; ordinal < visible; ordinal++)); do
    indices+=("$ordinal")
  done
fi

print_resource ${indices[@]+"${indices[@]}"}
