#!/usr/bin/env bash
# Runs on the GPU host, from the unpacked archives of build-bundle.sh (base/ and project/ side by
# side): the GPU-tagged tests, the tests that must hold on ORT's GPU build too, then the GPU
# benchmark (or the benchmark BENCHMARK_MAIN names, with GPU_BENCHMARK_ARGS). sparkinfer comes from the runtime jar without ONNX Runtime; ORT is the bundle's CUDA
# build (Java classes, JNI and CUDA 13 natives of one version). Writes logs and the benchmark's
# results to ${OUT:-./out}.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=$(cd "$here/../base" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
[ -d "$base/jre" ] || tar -C "$base" -xJf "$base/jre.tar.xz"
[ -d "$base/ort" ] || tar -C "$base" -xJf "$base/ort.tar.xz"
export LD_LIBRARY_PATH="$base/ort:/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
java="$base/jre/bin/java"
opens="--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true"
# The class path through the environment keeps the command line short (ORT's environment creation
# overflows the stack on long command lines).
export CLASSPATH="$base/junit-console.jar:$here/*:$base/jars/*"
jvm="$opens -Xss16m -Xmx32g -Donnxruntime.native.path=$base/ort -Dspark.ui.enabled=false -Dsparkinfer.commit=$(cat "$here/COMMIT")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
echo "commit $(cat "$here/COMMIT")" | tee -a "$out/gpu.txt"

tests=0
if [ -z "${SKIP_GPU_TESTS:-}" ]; then
echo "== GPU tests"
# shellcheck disable=SC2086
"$java" $jvm org.junit.platform.console.ConsoleLauncher execute \
  --scan-class-path "$here/sparkinfer-spark-udf-tests.jar:$here/sparkinfer-gpu-scheduling-tests.jar" --include-tag gpu \
  --details=tree --disable-banner 2>&1 | tee "$out/gpu-tests.log" | grep -vE "^\s+at |^[0-9]{2}/[0-9]{2}/[0-9]{2} " | tail -60
tests=${PIPESTATUS[0]}
fi

# REPEAT_TEST=Class#method REPEAT=N: one test N times more, each in a JVM of its own (a test that
# passed once on one card may still fail under other timing, as the out-of-memory test did).
if [ -n "${REPEAT_TEST:-}" ]; then
  for i in $(seq 1 "${REPEAT:-3}"); do
    # shellcheck disable=SC2086
    "$java" $jvm org.junit.platform.console.ConsoleLauncher execute --select-method "$REPEAT_TEST" \
      --details=summary --disable-banner 2>&1 | tee -a "$out/repeat-tests.log" | grep -E "tests (successful|failed)"
    [ "${PIPESTATUS[0]}" = 0 ] || tests=1
  done
fi

echo "== tests that must hold on ORT's GPU build too (device fallback, provider lists)"
# One JVM per module, as Maven runs them: TestDeviceResolver starts a SparkContext of its own.
independent=0
for classes in "io.github.sparkinfer.device.TestModelCacheDevices io.github.sparkinfer.device.TestDeviceResolver" \
    "io.github.sparkinfer.spark.TestInferenceApi"; do
  selection=""
  for class in $classes; do selection="$selection --select-class $class"; done
  # shellcheck disable=SC2086
  "$java" $jvm org.junit.platform.console.ConsoleLauncher execute $selection \
    --details=tree --disable-banner 2>&1 | tee -a "$out/build-independent-tests.log" | grep -vE "^\s+at |^[0-9]{2}/[0-9]{2}/[0-9]{2} " | tail -30
  [ "${PIPESTATUS[0]}" = 0 ] || independent=1
done

if [ -n "${SKIP_BENCHMARK:-}" ]; then
  echo "tests exit $tests, build-independent tests exit $independent, benchmark skipped"
  [ "$tests" = 0 ] && [ "$independent" = 0 ]
  exit
fi
main=${BENCHMARK_MAIN:-io.github.sparkinfer.benchmarks.GpuBenchmark}
echo "== benchmark $main"
if [ "$main" = io.github.sparkinfer.benchmarks.GpuBenchmark ]; then
  arguments="--out $out/RESULTS-gpu.md"
else
  # Another benchmark (PruningBenchmark, DistillationBenchmark): its section of a RESULTS file of its own.
  mkdir -p "$here/work"
  arguments="--results $out/RESULTS-${main##*.}.md --work-dir $here/work"
fi
# shellcheck disable=SC2086
"$java" $jvm "$main" $arguments ${GPU_BENCHMARK_ARGS:-} \
  2>&1 | tee "$out/gpu-benchmark.log" | grep -vE "^[0-9]{2}/[0-9]{2}/[0-9]{2} " | tail -40
bench=${PIPESTATUS[0]}
echo "tests exit $tests, build-independent tests exit $independent, benchmark exit $bench"
[ "$tests" = 0 ] && [ "$independent" = 0 ] && [ "$bench" = 0 ]
