package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxTensor;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cache closes sessions nobody uses (idle, beyond a device's limits, replaced versions) and
 * deletes their local copies, but never one that a run or a task holds.
 */
class TestSessionEviction {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();
  private static final long MINUTE = Duration.ofMinutes(1).toNanos();

  @TempDir Path temp;
  private final AtomicLong now = new AtomicLong(System.nanoTime());
  private final Configuration hadoop = new Configuration();
  private ModelCache cache;

  @AfterEach
  void tearDown() {
    if (cache != null) {
      cache.close();
    }
  }

  private ModelCache cache(Duration idle, int maxSessions, long maxBytes) {
    cache = new ModelCache(temp.resolve("cache"), AllowedRoots.unrestricted(), new CachePolicy(idle, maxSessions, maxBytes),
        now::get);
    return cache;
  }

  private ModelSource model(String name) throws Exception {
    Path file = temp.resolve(name + ".onnx");
    if (!Files.exists(file)) {
      Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    }
    return ModelSource.of(name, file.toUri().toString());
  }

  @Test
  void anIdleSessionIsClosedAndItsCopyDeletedButNotWhileATaskHoldsIt() throws Exception {
    cache(Duration.ofMinutes(30), 0, 0);
    ModelSource source = model("idle");
    LoadedModel first = cache.acquire(source, ONE_THREAD, hadoop);
    AutoCloseable lease = cache.lease(first);
    now.addAndGet(31 * MINUTE);
    assertThat(cache.evictUnused()).as("held by a task").isZero();
    assertThat(run(first)).containsExactly(1f, 2f, 3f, 4f);
    lease.close();  // the task ends; its last use is now
    now.addAndGet(29 * MINUTE);
    assertThat(cache.evictUnused()).isZero();
    now.addAndGet(2 * MINUTE);
    assertThat(cache.evictUnused()).isEqualTo(1);
    assertThat(filesIn(temp.resolve("cache"))).isEmpty();
    assertThatThrownBy(() -> run(first)).hasMessageContaining("is closed");
    LoadedModel again = cache.acquire(source, ONE_THREAD, hadoop);
    assertThat(again).isNotSameAs(first);
    assertThat(run(again)).containsExactly(1f, 2f, 3f, 4f);
    assertThat(cache.loadCount()).isEqualTo(2);
  }

  @Test
  void aRunInFlightKeepsItsSessionOpen() throws Exception {
    cache(Duration.ofMinutes(1), 0, 0);
    LoadedModel model = cache.acquire(model("running"), ONE_THREAD, hadoop);
    try (OnnxTensor input = input();
        ModelRun run = model.run(Map.of("x", input), Set.of("y"), Map.of())) {
      now.addAndGet(5 * MINUTE);
      assertThat(cache.evictUnused()).isZero();
      assertThat(run.result().get(0)).isNotNull();
    }
    now.addAndGet(2 * MINUTE);
    assertThat(cache.evictUnused()).isEqualTo(1);
  }

  @Test
  void beyondTheSessionLimitTheLeastRecentlyUsedUnusedOneIsClosed() throws Exception {
    cache(Duration.ZERO, 2, 0);
    LoadedModel a = cache.acquire(model("a"), ONE_THREAD, hadoop);
    now.addAndGet(MINUTE);
    LoadedModel b = cache.acquire(model("b"), ONE_THREAD, hadoop);
    run(a);  // a is now used more recently than b
    AutoCloseable holdA = cache.lease(a);
    now.addAndGet(MINUTE);
    LoadedModel c = cache.acquire(model("c"), ONE_THREAD, hadoop);
    assertThat(cache.evictionCount()).isEqualTo(1);
    assertThatThrownBy(() -> run(b)).hasMessageContaining("is closed");
    assertThat(run(a)).hasSize(4);
    assertThat(run(c)).hasSize(4);
    holdA.close();
    assertThat(filesIn(temp.resolve("cache"))).extracting(file -> file.getFileName().toString())
        .containsExactlyInAnyOrder("a.onnx", "c.onnx");
  }

  @Test
  void beyondTheByteLimitSessionsAreClosedOldestFirst() throws Exception {
    long modelBytes = OnnxModels.identity(OnnxModels.FLOAT, "batch", 4).length;
    cache(Duration.ZERO, 0, 2 * modelBytes);
    cache.acquire(model("x1"), ONE_THREAD, hadoop);
    now.addAndGet(MINUTE);
    cache.acquire(model("x2"), ONE_THREAD, hadoop);
    assertThat(cache.evictionCount()).isZero();
    now.addAndGet(MINUTE);
    cache.acquire(model("x3"), ONE_THREAD, hadoop);
    assertThat(cache.evictionCount()).isEqualTo(1);
    assertThat(filesIn(temp.resolve("cache"))).extracting(file -> file.getFileName().toString())
        .containsExactlyInAnyOrder("x2.onnx", "x3.onnx");
  }

  @Test
  void aReplacedVersionIsClosedWhenItsLastTaskEnds() throws Exception {
    cache(Duration.ZERO, 0, 0);
    ModelSource source = model("versioned");
    LoadedModel old = cache.acquire(source, ONE_THREAD, hadoop);
    AutoCloseable oldTask = cache.lease(old);
    Path file = temp.resolve("versioned.onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "rows", 4));
    Files.setLastModifiedTime(file, FileTime.fromMillis(Files.getLastModifiedTime(file).toMillis() + 10_000));
    LoadedModel current = cache.acquire(source, ONE_THREAD, hadoop);
    assertThat(current.signature()).isNotEqualTo(old.signature());
    assertThat(run(old)).as("a task still runs the old version").hasSize(4);
    assertThat(filesIn(temp.resolve("cache"))).hasSize(2);
    oldTask.close();
    assertThatThrownBy(() -> run(old)).hasMessageContaining("is closed");
    assertThat(run(current)).hasSize(4);
    assertThat(filesIn(temp.resolve("cache"))).hasSize(1);
    assertThat(cache.evictionCount()).isEqualTo(1);
  }

  @Test
  void badPolicyValuesFallBackToDefaultsInsteadOfStoppingTheExecutor() {
    CachePolicy policy = CachePolicy.fromSettings((key, fallback) -> "not a value");
    assertThat(policy.idleTimeout()).isEqualTo(CachePolicy.DEFAULT.idleTimeout());
    assertThat(policy.maxSessionsPerDevice()).isEqualTo(SchedulingProperties.CACHE_MAX_SESSIONS_DEFAULT);
    CachePolicy set = CachePolicy.fromSettings((key, fallback) -> key.equals(SchedulingProperties.CACHE_IDLE_TIMEOUT) ? "5s"
        : key.equals(SchedulingProperties.CACHE_MAX_BYTES) ? "20g" : "3");
    assertThat(set.idleTimeout()).isEqualTo(Duration.ofSeconds(5));
    assertThat(set.maxSessionsPerDevice()).isEqualTo(3);
    assertThat(set.maxBytesPerDevice()).isEqualTo(20L << 30);
  }

  private static OnnxTensor input() throws Exception {
    return OnnxTensor.createTensor(OrtEnvironments.get(), FloatBuffer.wrap(new float[] {1, 2, 3, 4}), new long[] {1, 4});
  }

  private static float[] run(LoadedModel model) throws Exception {
    try (OnnxTensor input = input(); ModelRun run = model.run(Map.of("x", input), Set.of("y"), Map.of())) {
      return ((float[][]) run.result().get(0).getValue())[0];
    }
  }

  private static List<Path> filesIn(Path folder) throws Exception {
    if (!Files.exists(folder)) {
      return List.of();
    }
    try (Stream<Path> files = Files.walk(folder)) {
      return files.filter(Files::isRegularFile).filter(file -> !file.getFileName().toString().startsWith(".")).collect(Collectors.toList());
    }
  }
}
