#!/usr/bin/env bash
# Issue 30's GPU measurement of text generation, in one device call of at most 10 minutes, from the
# unpacked archives of build-bundle.sh (base/ and project/ side by side; project/generate/ holds the
# Python side, benchmarks/generate/, and GPT-2's tokenizer.json):
#   1. make_decoders.py: both fp16 random-weight decoders on the GPU (gpt2-124m in the GPT-2 layout of
#      onnxruntime.transformers, which GreedySearch takes; qwen-0.5b in Optimum's layout, which the Java
#      loop runs), unless $GEN_DECODERS already holds them;
#   2. hf_generate.py: transformers' model.generate on both, batch sizes $GEN_BATCHES (growing to 512
#      while throughput grows), each run 5 to $GEN_HF_MAX_SECONDS s;
#   3. GenerateBenchmark --device cuda:0 on each: generate() (decodeLoop=graph and java), the plain Java
#      loop and the GreedySearch-wrapped model, each timed run at least 5 s; measurements that would
#      start after the time left are skipped and reported as such.
# Everything lands in $OUT: make.log, make_decoders.json, results-hf-<gpu>.json/.md, hf.log,
# generate-<model>.md/.json (RESULTS.md sections) and generate-<model>.log, timings.txt.
# Budget: $GEN_BUDGET_S (default 570) seconds in all; each step gets what the ones before left.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=$(cd "$here/../base" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
started=$SECONDS
budget=${GEN_BUDGET_S:-570}
batches=${GEN_BATCHES:-32,64,128,256}
gpt2_loop_batches=${GEN_GPT2_LOOP_BATCHES:-32,128}
qwen_batches=${GEN_QWEN_BATCHES:-32,128,256}
tasks=${GEN_TASKS:-2}
decoders=${GEN_DECODERS:-/tmp/gen-decoders}
gen=$here/generate
left() { echo $(( budget - (SECONDS - started) )); }
stamp() { echo "$(( SECONDS - started )) s: $*" | tee -a "$out/timings.txt"; }

[ -d "$base/jre" ] || tar -C "$base" -xJf "$base/jre.tar.xz"
[ -d "$base/ort" ] || tar -C "$base" -xJf "$base/ort.tar.xz"
export LD_LIBRARY_PATH="$base/ort:/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export CLASSPATH="$here/*:$base/jars/*"
export PYTHONUNBUFFERED=1
java="$base/jre/bin/java"
opens="--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true"
jvm="$opens -Xss16m -Xmx48g -Donnxruntime.native.path=$base/ort -Dspark.ui.enabled=false -Dsparkinfer.commit=$(cat "$here/COMMIT")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
echo "commit $(cat "$here/COMMIT")" | tee -a "$out/gpu.txt"
python3 -m pip list 2>/dev/null | grep -iE '^(torch|transformers|onnx|onnxruntime|onnxruntime-gpu|tokenizers) ' \
  | tee -a "$out/gpu.txt"

stamp "make_decoders.py"
if [ -f "$decoders/gpt2-124m/decoder.json" ] && [ -f "$decoders/qwen-0.5b/decoder.json" ]; then
  echo "decoders already in $decoders"
else
  # --skip-ort: the Java benchmark checks the ONNX model in ONNX Runtime itself (against a decode without the
  # cache), and a CPU run of the 0.5 B model here would cost device time.
  timeout "$(( $(left) - 300 ))" python3 "$gen/make_decoders.py" --models gpt2-124m,qwen-0.5b --out-dir "$decoders" \
    --tokenizer "$gen/tokenizer.json" --skip-ort --report "$out/make_decoders.json" > "$out/make.log" 2>&1
  make=$?
  tail -5 "$out/make.log"
  if [ "$make" != 0 ]; then
    stamp "make_decoders.py exit $make: see make.log"
    exit 1
  fi
fi

stamp "hf_generate.py"
timeout "$(( $(left) - 240 ))" python3 "$gen/hf_generate.py" --models gpt2-124m,qwen-0.5b --batch-sizes "$batches" \
  --max-batch-size 512 --max-seconds "${GEN_HF_MAX_SECONDS:-6}" --tokenizer "$gen/tokenizer.json" \
  --prompts "$gen/prompts-2048.txt" --out "$out" > "$out/hf.log" 2>&1
hf=$?
grep -E "^  batch|tokens/s at batch|^Best" "$out/hf.log" | tail -14

# The Java benchmark: gpt2-124m gets 55 % of the time left, qwen-0.5b the rest. A measurement starts only
# before the deadline (JVM-relative, so a margin for the last one and for the JVM's end).
bench() {  # model, share (percent of the time left), extra arguments...
  local model=$1 share=$2
  shift 2
  local time=$(( $(left) * share / 100 ))
  stamp "GenerateBenchmark $model ($time s)"
  # shellcheck disable=SC2086
  timeout "$time" "$java" $jvm io.github.sparkinfer.benchmarks.GenerateBenchmark --device cuda:0 \
    --model-dir "$decoders/$model" --prompts "$gen/prompts-2048.txt" --rows 2048 --new-tokens 64 --tasks "$tasks" \
    --min-seconds 5 --deadline-seconds $(( time - 60 )) --out "$out/generate-$model.md" "$@" \
    > "$out/generate-$model.log" 2>&1
  local status=$?
  grep -vE "^[0-9]{2}/[0-9]{2}/[0-9]{2} " "$out/generate-$model.log" | grep -E "^\[|FAILED" | tail -25
  stamp "GenerateBenchmark $model exit $status"
  return $status
}
bench gpt2-124m 55 --batch-sizes "$batches" --loop-batch-sizes "$gpt2_loop_batches"
gpt2=$?
bench qwen-0.5b 95 --batch-sizes "$qwen_batches"
qwen=$?
stamp "done: hf_generate exit $hf, GenerateBenchmark gpt2-124m exit $gpt2, qwen-0.5b exit $qwen"
[ "$hf" = 0 ] && [ "$gpt2" = 0 ] && [ "$qwen" = 0 ]
