#!/usr/bin/env bash
# Spark resource discovery script for Huawei Ascend NPUs, from sparkinfer's gpu-scheduling module.
#
# Prints the NPUs this process can use as one line of Spark's resource JSON:
#   {"name":"npu","addresses":["0","1"]}
# and {"name":"npu","addresses":[]} when there is none (no npu-smi, no driver, no NPU).
#
# Use it with:
#   spark.executor.resource.npu.discoveryScript=/path/to/sparkinfer-npu-discovery.sh
#   spark.worker.resource.npu.discoveryScript=/path/to/sparkinfer-npu-discovery.sh   (standalone)
#
# The addresses are CANN logical device ids, what CANN (and ONNX Runtime's CANN provider, as
# device_id) takes. They come from the "Chip Logic ID" column of `npu-smi info -m`, which lists
# every chip: a card such as the Atlas 300I Duo has two NPU chips under one NPU ID, and a
# management chip (Mcu) without a logic id, which is skipped. When `npu-smi info -m` is not
# available or lists no chip, the "NPU ID" lines of `npu-smi info -l` are used, which match the
# logical ids on cards of one chip each (Atlas 800 / 910 servers). When ASCEND_RT_VISIBLE_DEVICES
# is set, CANN numbers the devices it names 0, 1, ... in its order; the addresses are then those
# numbers, up to the first entry that names no device.
#
# Environment:
#   SPARKINFER_NPU_RESOURCE_NAME  the resource name to print (default npu)
#   SPARKINFER_NPU_SMI            the npu-smi command (default npu-smi, looked up on PATH)

# ${array[@]+"${array[@]}"} below expands an empty array to nothing: bash before 4.4 (CentOS 7
# has 4.2) calls it unbound under set -u.
set -u

name="${SPARKINFER_NPU_RESOURCE_NAME:-npu}"
smi="${SPARKINFER_NPU_SMI:-npu-smi}"

if [[ ! "$name" =~ ^[A-Za-z0-9._-]+$ ]]; then
  echo "sparkinfer-npu-discovery: invalid resource name '$name' in SPARKINFER_NPU_RESOURCE_NAME:" \
    "use letters, digits, '.', '_' and '-'" >&2
  exit 1
fi

print_resource() {
  local addresses="" address
  for address in "$@"; do
    addresses="${addresses:+$addresses,}\"$address\""
  done
  printf '{"name":"%s","addresses":[%s]}\n' "$name" "$addresses"
}

# The "Chip Logic ID" column of `npu-smi info -m`, one per line. Its rows read
#   <NPU ID> <Chip ID> <Chip Logic ID> <Chip Name...>
# under a header row; the logic id is "-" for management chips.
logic_ids() {
  local output
  output="$("$smi" info -m)" || return 1
  while read -r npu chip logic rest; do
    if [[ "${npu:-}" =~ ^[0-9]+$ && "${chip:-}" =~ ^[0-9]+$ && "${logic:-}" =~ ^[0-9]+$ ]]; then
      echo "$logic"
    fi
  done <<< "$output"
}

# The ids of the "NPU ID : <id>" lines of `npu-smi info -l`, one per line.
npu_ids() {
  local output line
  output="$("$smi" info -l)" || return 1
  while IFS= read -r line; do
    if [[ "$line" =~ ^[[:space:]]*NPU[[:space:]]+ID[[:space:]]*:[[:space:]]*([0-9]+)[[:space:]]*$ ]]; then
      echo "${BASH_REMATCH[1]}"
    fi
  done <<< "$output"
}

ids=()
if ! command -v "$smi" >/dev/null 2>&1; then
  echo "sparkinfer-npu-discovery: $smi not found; reporting no NPU" >&2
else
  found="$(logic_ids | sort -n -u)"
  if [[ -z "$found" ]]; then
    echo "sparkinfer-npu-discovery: no chip logic id in '$smi info -m'; using the NPU IDs of" \
      "'$smi info -l'" >&2
    found="$(npu_ids | sort -n -u)"
  fi
  while IFS= read -r id; do
    if [[ -n "$id" ]]; then
      ids+=("$id")
    fi
  done <<< "$found"
fi

if [[ -n "${ASCEND_RT_VISIBLE_DEVICES+set}" ]]; then
  visible=0
  IFS=',' read -r -a entries <<< "$ASCEND_RT_VISIBLE_DEVICES"
  for entry in ${entries[@]+"${entries[@]}"}; do
    entry="${entry//[[:space:]]/}"
    found=0
    for id in ${ids[@]+"${ids[@]}"}; do
      if [[ "$entry" =~ ^[0-9]+$ && "$id" == "$entry" ]]; then
        found=1
      fi
    done
    if (( ! found )); then
      break
    fi
    visible=$((visible + 1))
  done
  ids=()
  for ((ordinal = 0; ordinal < visible; ordinal++)); do
    ids+=("$ordinal")
  done
fi

print_resource ${ids[@]+"${ids[@]}"}
