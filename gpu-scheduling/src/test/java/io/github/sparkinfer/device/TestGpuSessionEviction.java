package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtProvider;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a real GPU: closing an idle session gives its GPU memory back (nvidia-smi's memory.used of
 * GPU 0, on a host where nothing else runs). Run by scripts/gpu/run-on-gpu.sh; skipped elsewhere.
 */
@Tag("gpu")
class TestGpuSessionEviction {
  private static final int ROWS = 4096;
  private static final int COLUMNS = 16384;  // 256 MiB of float weights

  @TempDir Path temp;

  @Test
  void evictingAnIdleCudaSessionReleasesItsGpuMemory() throws Exception {
    boolean cuda = OrtEnvironments.get().getAvailableProviders().contains(OrtProvider.CUDA);
    Assumptions.assumeTrue(cuda && Files.exists(Path.of("/dev/nvidia0")), "no CUDA provider or no NVIDIA GPU");
    AtomicLong now = new AtomicLong(System.nanoTime());
    SessionSettings onGpu = SessionSettings.builder().device(Device.cuda(0)).fallback(DeviceFallback.FAIL).build();
    Configuration hadoop = new Configuration();
    try (ModelCache cache = new ModelCache(temp.resolve("cache"), AllowedRoots.unrestricted(),
        new CachePolicy(Duration.ofMinutes(1), 0, 0), now::get)) {
      // The CUDA context stays for the process; load and drop a small model first so the baseline has it.
      Path small = writeModel("small", 64, 64);
      runOnce(cache.acquire(ModelSource.of("small", small.toString()), onGpu, hadoop), 64);
      now.addAndGet(Duration.ofMinutes(2).toNanos());
      assertThat(cache.evictUnused()).isEqualTo(1);
      long baseline = usedMiB();

      Path large = writeModel("large", ROWS, COLUMNS);
      LoadedModel model = cache.acquire(ModelSource.of("large", large.toString()), onGpu, hadoop);
      assertThat(model.device()).isEqualTo(Device.cuda(0));
      runOnce(model, ROWS);
      long loaded = usedMiB();
      now.addAndGet(Duration.ofMinutes(2).toNanos());
      assertThat(cache.evictUnused()).isEqualTo(1);
      long evicted = usedMiB();
      System.out.printf("GPU memory used: baseline %d MiB, with the 256 MiB model %d MiB, after eviction %d MiB%n",
          baseline, loaded, evicted);
      assertThat(loaded - baseline).as("the model's weights on the GPU").isGreaterThanOrEqualTo(256);
      assertThat(evicted - baseline).as("left after closing the session").isLessThan(64);
    }
  }

  private Path writeModel(String name, int rows, int columns) throws Exception {
    Path data = temp.resolve(name + ".bin");
    ByteBuffer row = ByteBuffer.allocateDirect(4 * columns).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel channel = FileChannel.open(data, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      for (int i = 0; i < rows; i++) {
        row.clear();
        for (int j = 0; j < columns; j++) {
          row.putFloat(((i + j) % 7 - 3) / 8f);
        }
        row.flip();
        while (row.hasRemaining()) {
          channel.write(row);
        }
      }
    }
    Path model = temp.resolve(name + ".onnx");
    Files.write(model, OnnxModels.externalMatMul(name + ".bin", rows, columns));
    return model;
  }

  private static void runOnce(LoadedModel model, int width) throws Exception {
    try (OnnxTensor input = OnnxTensor.createTensor(OrtEnvironments.get(), FloatBuffer.wrap(new float[width]),
            new long[] {1, width});
        ModelRun run = model.run(Map.of("x", input), Set.of("y"), Map.of())) {
      assertThat(run.result().get(0)).isNotNull();
    }
  }

  private static long usedMiB() throws Exception {
    Process process = new ProcessBuilder("nvidia-smi", "--id=0", "--query-gpu=memory.used", "--format=csv,noheader,nounits")
        .redirectErrorStream(true).start();
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream()))) {
      String line = reader.readLine();
      process.waitFor();
      return Long.parseLong(line.trim());
    }
  }
}
