package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A session is loaded for the content of a model's files, not their status: same-size, same-mtime
 * replacements and changed data files are served, a restored older file works, a task's sessions
 * are never closed before it leases them, and local copies are cleaned without breaking another
 * cache (executor) of the same folder.
 */
class TestModelVersions {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();
  private static final SessionSettings TWO_THREADS = SessionSettings.builder().intraOpThreads(2).build();
  private static final int ROWS = 8;
  private static final int COLUMNS = 3;

  @TempDir Path temp;
  private final Configuration hadoop = new Configuration();
  private ModelCache cache;
  private ModelCache other;

  @AfterEach
  void tearDown() {
    for (ModelCache open : new ModelCache[] {cache, other}) {
      if (open != null) {
        open.close();
      }
    }
  }

  private ModelCache cache(int maxSessions) {
    return new ModelCache(temp.resolve("cache"), AllowedRoots.unrestricted(),
        new CachePolicy(Duration.ZERO, maxSessions, 0), System::nanoTime);
  }

  @Test
  void aSameSizeFileWithTheSameModificationTimeIsServed() throws Exception {
    cache = cache(0);
    Path file = temp.resolve("m.onnx");
    byte[] before = OnnxModels.identity(OnnxModels.DOUBLE, "rows", 8);
    byte[] after = OnnxModels.identity(OnnxModels.DOUBLE, "cols", 8);
    assertThat(after).hasSameSizeAs(before).isNotEqualTo(before);
    Files.write(file, before);
    FileTime mtime = FileTime.fromMillis(System.currentTimeMillis() - 60_000);
    Files.setLastModifiedTime(file, mtime);
    ModelSource source = ModelSource.of("m", file.toUri().toString());
    assertThat(cache.acquire(source, ONE_THREAD, hadoop).signature().inputs().get(0).toString())
        .isEqualTo("x: DOUBLE[rows, 8]");

    // A retrain copied over it with cp -p: same size, same mtime, other content.
    Files.write(file, after);
    Files.setLastModifiedTime(file, mtime);

    assertThat(cache.acquire(source, ONE_THREAD, hadoop).signature().inputs().get(0).toString())
        .isEqualTo("x: DOUBLE[cols, 8]");
  }

  @Test
  void aChangedDataFileIsServedWhenItsOnnxFileIsTheSame() throws Exception {
    cache = cache(0);
    Path remote = Files.createDirectories(temp.resolve("remote"));
    Files.write(remote.resolve("m.onnx"), OnnxModels.externalMatMul("w.bin", ROWS, COLUMNS));
    float[] first = weights(1);
    Files.write(remote.resolve("w.bin"), bytes(first));
    FileTime mtime = FileTime.fromMillis(System.currentTimeMillis() - 60_000);
    Files.setLastModifiedTime(remote.resolve("w.bin"), mtime);
    ModelSource source = ModelSource.of("ext", remote.resolve("m.onnx").toUri().toString());
    assertThat(run(cache.acquire(source, ONE_THREAD, hadoop))).containsExactly(expected(first));

    float[] second = weights(2);
    Files.write(remote.resolve("w.bin"), bytes(second));
    Files.setLastModifiedTime(remote.resolve("w.bin"), mtime);

    assertThat(run(cache.acquire(source, ONE_THREAD, hadoop))).containsExactly(expected(second));
  }

  @Test
  void aRestoredOlderFileWorks() throws Exception {
    cache = cache(0);
    Path file = temp.resolve("m.onnx");
    byte[] old = OnnxModels.identity(OnnxModels.FLOAT, "batch", 4);
    byte[] newer = OnnxModels.identity(OnnxModels.FLOAT, "batch", 5);
    long then = System.currentTimeMillis() - 600_000;
    ModelSource source = ModelSource.of("m", file.toUri().toString());
    Files.write(file, old);
    Files.setLastModifiedTime(file, FileTime.fromMillis(then));
    cache.acquire(source, ONE_THREAD, hadoop);
    Files.write(file, newer);
    Files.setLastModifiedTime(file, FileTime.fromMillis(then + 60_000));
    cache.acquire(source, ONE_THREAD, hadoop);

    // Rolled back: the old file with its old mtime.
    Files.write(file, old);
    Files.setLastModifiedTime(file, FileTime.fromMillis(then));
    LoadedModel restored = cache.acquire(source, ONE_THREAD, hadoop);
    try (AutoCloseable task = cache.lease(restored)) {
      assertThat(restored.signature().inputs().get(0).toString()).isEqualTo("x: FLOAT[batch, 4]");
      assertThat(runIdentity(restored, 4)).containsExactly(1, 2, 3, 4);
    }
    // And again, for the next task.
    LoadedModel again = cache.acquire(source, ONE_THREAD, hadoop);
    try (AutoCloseable task = cache.lease(again)) {
      assertThat(runIdentity(again, 4)).containsExactly(1, 2, 3, 4);
    }
  }

  @Test
  void twoModelsWithOneSessionPerDeviceWorkInOneTask() throws Exception {
    cache = cache(1);
    ModelSource first = write("first", 4);
    ModelSource second = write("second", 5);
    for (int task = 0; task < 3; task++) {
      LoadedModel a = cache.acquire(first, ONE_THREAD, hadoop);
      try (AutoCloseable leaseA = cache.lease(a)) {
        LoadedModel b = cache.acquire(second, ONE_THREAD, hadoop);
        try (AutoCloseable leaseB = cache.lease(b)) {
          assertThat(runIdentity(a, 4)).containsExactly(1, 2, 3, 4);
          assertThat(runIdentity(b, 5)).containsExactly(1, 2, 3, 4, 5);
          assertThat(runIdentity(a, 4)).containsExactly(1, 2, 3, 4);
        }
      }
    }
    // With the task gone, the limit holds again.
    assertThat(cache.evictionCount()).isPositive();
    try (ModelCache.Lease lease = cache.acquireLeased(second, ONE_THREAD, hadoop)) {
      assertThat(runIdentity(lease.model(), 5)).containsExactly(1, 2, 3, 4, 5);
    }
  }

  @Test
  void aFailedLoadLeavesNoFolderBehind() throws Exception {
    cache = cache(0);
    Path broken = temp.resolve("broken.onnx");
    Files.write(broken, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
    Path remote = Files.createDirectories(temp.resolve("remote"));
    // Its data file is missing: the copy fails after the .onnx is copied.
    Files.write(remote.resolve("m.onnx"), OnnxModels.externalMatMul("missing.bin", ROWS, COLUMNS));

    assertThat(catchThrowable(() -> cache.acquire(ModelSource.of("broken", broken.toUri().toString()), ONE_THREAD,
        hadoop))).isInstanceOf(ModelLoadException.class);
    assertThat(catchThrowable(() -> cache.acquire(ModelSource.of("m", remote.resolve("m.onnx").toUri().toString()),
        ONE_THREAD, hadoop))).isInstanceOf(ModelLoadException.class).hasMessageContaining("missing.bin");

    assertThat(foldersIn(temp.resolve("cache"))).isEmpty();
  }

  @Test
  void evictionKeepsTheFolderAnotherCacheUses() throws Exception {
    cache = cache(0);
    other = cache(0);
    Path file = temp.resolve("m.onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis() - 60_000));
    ModelSource source = ModelSource.of("m", file.toUri().toString());
    LoadedModel mine = cache.acquire(source, ONE_THREAD, hadoop);
    LoadedModel theirs = other.acquire(source, ONE_THREAD, hadoop);
    assertThat(other.copyCount()).as("the other executor reuses the copy").isZero();
    Path copy = ((CachedModel) mine).localFile();
    assertThat(((CachedModel) theirs).localFile()).isEqualTo(copy);

    // Replaced: this cache closes its old session, and would delete its copy.
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 5));
    cache.acquire(source, ONE_THREAD, hadoop);
    assertThat(cache.evictionCount()).isEqualTo(1);

    assertThat(copy).exists();
    // The other executor still runs its session, and still loads from its copy.
    assertThat(runIdentity(theirs, 4)).containsExactly(1, 2, 3, 4);
    // Once the other executor is done with it, the next eviction here deletes it.
    other.close();
    other = null;
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 6));
    assertThat(FolderLocks.deleteIfUnused(copy.getParent())).isTrue();
    assertThat(copy).doesNotExist();
  }

  private ModelSource write(String name, int width) throws Exception {
    Path file = temp.resolve(name + ".onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", width));
    return ModelSource.of(name, file.toUri().toString());
  }

  private static List<Path> foldersIn(Path folder) throws Exception {
    if (!Files.exists(folder)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(folder)) {
      return files.filter(Files::isDirectory).collect(Collectors.toList());
    }
  }

  private static float[] weights(int seed) {
    float[] weights = new float[ROWS * COLUMNS];
    for (int i = 0; i < weights.length; i++) {
      weights[i] = seed * ((i % 7) - 3 + 0.25f * i);
    }
    return weights;
  }

  private static byte[] bytes(float[] weights) {
    ByteBuffer bytes = ByteBuffer.allocate(4 * weights.length).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(weights);
    return bytes.array();
  }

  private static float[] expected(float[] weights) {
    float[] y = new float[COLUMNS];
    for (int j = 0; j < COLUMNS; j++) {
      double sum = 0;
      for (int i = 0; i < ROWS; i++) {
        sum += (i + 1) * (double) weights[i * COLUMNS + j];
      }
      y[j] = (float) sum;
    }
    return y;
  }

  private static float[] run(LoadedModel model) throws Exception {
    return runWith(model, ROWS);
  }

  private static float[] runIdentity(LoadedModel model, int width) throws Exception {
    return runWith(model, width);
  }

  private static float[] runWith(LoadedModel model, int width) throws Exception {
    float[] x = new float[width];
    for (int i = 0; i < width; i++) {
      x[i] = i + 1;
    }
    try (OnnxTensor input = OnnxTensor.createTensor(OrtEnvironments.get(), FloatBuffer.wrap(x), new long[] {1, width});
        OrtSession.Result result = model.session().run(Map.of("x", input))) {
      return ((float[][]) result.get(0).getValue())[0];
    }
  }
}
