#!/usr/bin/env bash
# Builds a self-contained bundle to run sparkinfer's GPU tests and GPU benchmark on a host that has
# an NVIDIA GPU and CUDA 13 user-space libraries but no JDK and no network (see ../../docs/gpus.md,
# "ONNX Runtime with CUDA"): a jlink JRE, the runtime and test jars, and ONNX Runtime with CUDA.
#
# ONNX Runtime on CUDA 13: Microsoft's onnxruntime_gpu Java artifact is built for CUDA 12, so the
# bundle takes the Java classes from onnxruntime, the CUDA-enabled JNI library from onnxruntime_gpu,
# and the CUDA 13 native libraries from org.bytedeco:onnxruntime (linux-x86_64-gpu), all of one ORT
# version: GPU_ORT_VERSION (bytedeco has no CUDA 13 build of the project's own ort.version yet).
#
# Usage: scripts/gpu/build-bundle.sh [out-dir]   (after ./mvnw -q -B install -DskipTests)
# Result: <out-dir>/sparkinfer-gpu-bundle.tar.xz, and .device-parts/NN/ parts of 44 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU_ORT_VERSION=${GPU_ORT_VERSION:-1.28.0}
BYTEDECO_VERSION=${BYTEDECO_VERSION:-1.28.0-1.5.14}
JUNIT_CONSOLE_VERSION=${JUNIT_CONSOLE_VERSION:-1.13.4}
out=${1:-target/gpu-bundle}
bundle=$out/sparkinfer-gpu
rm -rf "$out" && mkdir -p "$bundle/jars" "$bundle/ort" "$out/tmp"

echo "== class path (spark-udf tests + benchmarks)"
./mvnw -q -B -o -pl spark-udf dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$PWD/$out/tmp/udf.cp" >/dev/null
./mvnw -q -B -o -pl benchmarks dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$PWD/$out/tmp/bench.cp" >/dev/null
# Not needed by the GPU tests and benchmark, and large (spark-mllib stays: TestInferenceApi feeds ML vectors).
skip='rocksdbjni|netty-.*-(osx|windows)|netty-tcnative|onnxruntime-1\.|onnxruntime_gpu|hadoop-client-minicluster|junit-4|spark-connect'
for jar in $( { cat "$out/tmp/udf.cp"; echo; cat "$out/tmp/bench.cp"; } | tr ':' '\n' | sort -u); do
  if [[ "$jar" == *.jar ]] && ! [[ "$(basename "$jar")" =~ $skip ]]; then
    cp -L "$jar" "$bundle/jars/"
  fi
done
for module in gpu-scheduling partitioning compression spark-udf benchmarks; do
  cp "$module"/target/sparkinfer-"$module"-*-SNAPSHOT.jar "$bundle/jars/" 2>/dev/null || true
done
rm -f "$bundle"/jars/*-sources.jar "$bundle"/jars/*-spark-submit.jar
(cd spark-udf/target/test-classes && zip -qr "$OLDPWD/$bundle/jars/sparkinfer-spark-udf-tests.jar" .)
(cd gpu-scheduling/target/test-classes && zip -qr "$OLDPWD/$bundle/jars/sparkinfer-gpu-scheduling-tests.jar" .)

echo "== ONNX Runtime $GPU_ORT_VERSION with CUDA"
# Straight from Maven Central: org.bytedeco's parent POM is not there, so Maven refuses the jar.
fetch() { # group artifact version [classifier]
  local file="$2-$3${4:+-$4}.jar"
  curl -fsSL -o "$out/tmp/$file" "https://repo.maven.apache.org/maven2/${1//.//}/$2/$3/$file"
}
fetch com.microsoft.onnxruntime onnxruntime "$GPU_ORT_VERSION"
fetch com.microsoft.onnxruntime onnxruntime_gpu "$GPU_ORT_VERSION"
fetch org.bytedeco onnxruntime "$BYTEDECO_VERSION" linux-x86_64-gpu
fetch org.junit.platform junit-platform-console-standalone "$JUNIT_CONSOLE_VERSION"
cp "$out/tmp/onnxruntime-$GPU_ORT_VERSION.jar" "$bundle/jars/"
zip -q -d "$bundle/jars/onnxruntime-$GPU_ORT_VERSION.jar" 'ai/onnxruntime/native/*' >/dev/null
unzip -q -j -o "$out/tmp/onnxruntime_gpu-$GPU_ORT_VERSION.jar" 'ai/onnxruntime/native/linux-x64/libonnxruntime4j_jni.so' -d "$bundle/ort"
unzip -q -j -o "$out/tmp/onnxruntime-$BYTEDECO_VERSION-linux-x86_64-gpu.jar" \
  'org/bytedeco/onnxruntime/linux-x86_64-gpu/libonnxruntime.so.1' \
  'org/bytedeco/onnxruntime/linux-x86_64-gpu/libonnxruntime_providers_cuda.so' \
  'org/bytedeco/onnxruntime/linux-x86_64-gpu/libonnxruntime_providers_shared.so' -d "$bundle/ort"
(cd "$bundle/ort" && mv libonnxruntime.so.1 libonnxruntime.so && ln -s libonnxruntime.so libonnxruntime.so.1)
cp "$out/tmp/junit-platform-console-standalone-$JUNIT_CONSOLE_VERSION.jar" "$bundle/junit-console.jar"

echo "== JRE (jlink)"
"${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}/bin/jlink" --add-modules \
java.base,java.compiler,java.datatransfer,java.desktop,java.instrument,java.logging,java.management,\
java.naming,java.net.http,java.prefs,java.rmi,java.scripting,java.security.jgss,java.security.sasl,java.sql,\
java.xml,jdk.crypto.ec,jdk.jfr,jdk.management,jdk.net,jdk.unsupported,jdk.zipfs,jdk.security.auth,jdk.security.jgss \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output "$bundle/jre"

cp scripts/gpu/run-on-gpu.sh "$bundle/"
chmod +x "$bundle/run-on-gpu.sh"
echo "$(git rev-parse --short HEAD)$(git status --porcelain | grep -q . && echo -dirty)" > "$bundle/COMMIT"

echo "== pack"
# Level 1: most of the bundle is jars, already compressed; -6 took about 20 minutes on 2 cores.
tar -C "$out" -cf - sparkinfer-gpu | xz -T2 "-${XZ_LEVEL:-1}" > "$out/sparkinfer-gpu-bundle.tar.xz"
ls -la "$out/sparkinfer-gpu-bundle.tar.xz"
bash ../shared/gpu/split-for-device.sh "$out/sparkinfer-gpu-bundle.tar.xz" 2>/dev/null \
  || bash "$(dirname "$PWD")/shared/gpu/split-for-device.sh" "$out/sparkinfer-gpu-bundle.tar.xz"
