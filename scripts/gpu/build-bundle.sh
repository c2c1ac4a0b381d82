#!/usr/bin/env bash
# Builds what runs sparkinfer's GPU tests and GPU benchmark on a host that has an NVIDIA GPU and
# CUDA 13 user-space libraries but no JDK and no network (see ../../docs/gpus.md, "ONNX Runtime with
# CUDA"), as two archives:
#   base.tar      the large parts that do not change with the code: a jlink JRE (xz), ONNX Runtime
#                 with CUDA (xz) and the third-party jars (stored: they are compressed already);
#   project.tar.xz  sparkinfer's own jars: the runtime jar without ONNX Runtime (the user's ORT build
#                 is used, as docs/your-code.md describes), the benchmarks and the test jars.
# and cuts them into parts for the device tool: .device-parts/base-NN/ and .device-parts/project/.
# Send the base parts once per machine, then the project part with each code change.
#
# ONNX Runtime on CUDA 13: Microsoft's onnxruntime_gpu Java artifact is built for CUDA 12, so the
# bundle takes the Java classes from onnxruntime, the CUDA-enabled JNI library from onnxruntime_gpu,
# and the CUDA 13 native libraries from org.bytedeco:onnxruntime (linux-x86_64-gpu), all of one ORT
# version: GPU_ORT_VERSION (bytedeco has no CUDA 13 build of the project's own ort.version yet).
# Every artifact comes through Maven (dependency:copy), from whatever repository Maven is set up for.
#
# Usage: scripts/gpu/build-bundle.sh [out-dir]   (from a fresh clone: it builds the jars itself)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
GPU_ORT_VERSION=${GPU_ORT_VERSION:-1.28.0}
BYTEDECO_VERSION=${BYTEDECO_VERSION:-1.28.0-1.5.14}
JUNIT_CONSOLE_VERSION=${JUNIT_CONSOLE_VERSION:-1.13.4}
out=$(realpath -m "${1:-target/gpu-bundle}")
mvn() { "$root/mvnw" -B -ntp -q "$@"; }
start=$(date +%s)
echo "== jars (mvnw clean install -DskipTests)"
# clean: target/ may still hold the jars of another Spark line or an older name, which the copies
# below would pick up beside the current ones (and the class path would then hold both).
# Before the bundle's folders are made: the default out-dir is under target/.
mvn clean install -DskipTests
rm -rf "$out" && mkdir -p "$out/base/jars" "$out/base/ort" "$out/project" "$out/tmp"


echo "== class path (spark-udf tests + benchmarks)"
mvn -pl spark-udf dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$out/tmp/udf.cp"
mvn -pl benchmarks dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$out/tmp/bench.cp"
# Not needed by the GPU tests and benchmark, and large; sparkinfer, ONNX Runtime, DJL, JNA and gson
# come from the runtime jar and the user's ORT build instead.
skip='^(sparkinfer-|onnxruntime|tokenizers-|api-[0-9]|jna-|gson-2\.13|rocksdbjni|netty-.*-(osx|windows)|netty-tcnative|hadoop-client-minicluster|junit-4|spark-connect)'
for jar in $( { cat "$out/tmp/udf.cp"; echo; cat "$out/tmp/bench.cp"; } | tr ':' '\n' | sort -u); do
  if [[ "$jar" == *.jar ]] && ! [[ "$(basename "$jar")" =~ $skip ]]; then
    cp -L "$jar" "$out/base/jars/"
  fi
done

echo "== ONNX Runtime $GPU_ORT_VERSION with CUDA (through Maven)"
copy() { mvn dependency:copy -Dartifact="$1" -DoutputDirectory="$out/tmp" -Dmdep.overWriteReleases=true; }
copy "com.microsoft.onnxruntime:onnxruntime:$GPU_ORT_VERSION"
copy "com.microsoft.onnxruntime:onnxruntime_gpu:$GPU_ORT_VERSION"
copy "org.bytedeco:onnxruntime:$BYTEDECO_VERSION:jar:linux-x86_64-gpu"
copy "org.junit.platform:junit-platform-console-standalone:$JUNIT_CONSOLE_VERSION"
cp "$out/tmp/onnxruntime-$GPU_ORT_VERSION.jar" "$out/base/jars/"
zip -q -d "$out/base/jars/onnxruntime-$GPU_ORT_VERSION.jar" 'ai/onnxruntime/native/*' >/dev/null
unzip -q -j -o "$out/tmp/onnxruntime_gpu-$GPU_ORT_VERSION.jar" 'ai/onnxruntime/native/linux-x64/libonnxruntime4j_jni.so' -d "$out/base/ort"
unzip -q -j -o "$out/tmp/onnxruntime-$BYTEDECO_VERSION-linux-x86_64-gpu.jar" \
  'org/bytedeco/onnxruntime/linux-x86_64-gpu/libonnxruntime.so.1' \
  'org/bytedeco/onnxruntime/linux-x86_64-gpu/libonnxruntime_providers_cuda.so' \
  'org/bytedeco/onnxruntime/linux-x86_64-gpu/libonnxruntime_providers_shared.so' -d "$out/base/ort"
(cd "$out/base/ort" && mv libonnxruntime.so.1 libonnxruntime.so && ln -s libonnxruntime.so libonnxruntime.so.1)
cp "$out/tmp/junit-platform-console-standalone-$JUNIT_CONSOLE_VERSION.jar" "$out/base/junit-console.jar"

echo "== JRE (jlink)"
"${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}/bin/jlink" --add-modules \
java.base,java.compiler,java.datatransfer,java.desktop,java.instrument,java.logging,java.management,\
java.naming,java.net.http,java.prefs,java.rmi,java.scripting,java.security.jgss,java.security.sasl,java.sql,\
java.xml,jdk.crypto.ec,jdk.jfr,jdk.management,jdk.net,jdk.unsupported,jdk.zipfs,jdk.security.auth,jdk.security.jgss \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output "$out/tmp/jre"

echo "== project jars"
cp spark-runtime/target/sparkinfer-spark-runtime-*_2.13-*-without-onnxruntime.jar "$out/project/"
cp benchmarks/target/sparkinfer-benchmarks-*-SNAPSHOT.jar "$out/project/"
# DistillationBenchmark: the distillation jar, Tribuo shaded inside.
cp distillation/target/sparkinfer-distillation-*-SNAPSHOT.jar "$out/project/"
(cd spark-udf/target/test-classes && zip -qr "$out/project/sparkinfer-spark-udf-tests.jar" .)
(cd gpu-scheduling/target/test-classes && zip -qr "$out/project/sparkinfer-gpu-scheduling-tests.jar" .)
cp scripts/gpu/run-on-gpu.sh scripts/gpu/run-generate-benchmark.sh "$out/project/"
# The Python side of the generate() benchmark (run-generate-benchmark.sh) and GPT-2's tokenizer.json.
mkdir -p "$out/project/generate"
cp benchmarks/generate/{decoders.py,make_decoders.py,hf_generate.py,prompts-2048.txt} "$out/project/generate/"
cp "${GEN_TOKENIZER:-$root/../shared/models/decoders/tiny-random-gpt2-fp32/tokenizer.json}" "$out/project/generate/"
echo "$(git rev-parse --short HEAD)$(git status --porcelain | grep -q . && echo -dirty)" > "$out/project/COMMIT"

echo "== pack"
# The JRE and the native libraries compress well; the jars are stored as they are.
tar -C "$out/tmp" -cf - jre | xz -T2 -6 > "$out/base/jre.tar.xz"
tar -C "$out/base" -cf - ort | xz -T2 -1 > "$out/base/ort.tar.xz" && rm -rf "$out/base/ort"
tar -C "$out" -cf "$out/base.tar" base
tar -C "$out" -cf - project | xz -T2 -6 > "$out/project.tar.xz"
rm -rf "$root/.device-parts" && mkdir -p "$root/.device-parts/project"
split -b 44M -d -a 2 "$out/base.tar" "$root/.device-parts/base-part-"
for part in "$root"/.device-parts/base-part-*; do
  n=${part##*-}; mkdir -p "$root/.device-parts/base-$n"; mv "$part" "$root/.device-parts/base-$n/"
done
cp "$out/project.tar.xz" "$root/.device-parts/project/"
ls -la "$out/base.tar" "$out/project.tar.xz"
ls -1 "$root/.device-parts" | sed 's/^/part folder: .device-parts\//'
echo "Built in $(( $(date +%s) - start )) s. On the GPU host: cat base-part-* | tar xf - && tar xJf project.tar.xz,"
echo "then project/run-on-gpu.sh (see the script for what it runs)."
