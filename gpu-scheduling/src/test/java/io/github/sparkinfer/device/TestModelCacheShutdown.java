package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Closing sessions at shutdown never frees one under a run: a run holds its session until its
 * outputs are closed; closeAll waits for it within the grace period, and past that leaves the
 * session to be closed by the run when it ends.
 */
class TestModelCacheShutdown {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();

  @TempDir Path temp;
  private final Configuration hadoop = new Configuration();

  private LoadedModel tinyModel(ModelCache cache) throws Exception {
    Path file = temp.resolve("tiny.onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    return cache.acquire(ModelSource.of("tiny", file.toUri().toString()), ONE_THREAD, hadoop);
  }

  private static ModelRun run(LoadedModel model) throws OrtException {
    try (OnnxTensor x = OnnxTensor.createTensor(OrtEnvironment.getEnvironment(), new float[][] {{1, 2, 3, 4}})) {
      return model.run(Map.of("x", x), Set.of("y"), Map.of());
    }
  }

  @Test
  void aRunInFlightPastTheGracePeriodKeepsItsSessionUntilItEnds() throws Exception {
    ModelCache cache = new ModelCache(temp.resolve("cache"));
    LoadedModel model = tinyModel(cache);
    CachedModel cached = (CachedModel) model;
    ModelRun inFlight = run(model);

    ShutdownSummary summary = cache.closeAll(Duration.ofMillis(50));

    assertThat(summary.sessions()).isEqualTo(1);
    assertThat(summary.leftOpen()).isEqualTo(1);
    assertThat(summary.runsInFlight()).isEqualTo(1);
    assertThat(summary.elapsedMillis()).isGreaterThanOrEqualTo(50);
    assertThat(summary.toString()).contains("0 of 1 sessions closed, 1 left open; 1 runs were in flight");
    // Still open: the run's outputs are readable, the session answers.
    assertThat(cached.isClosed()).isFalse();
    assertThat(((float[][]) inFlight.result().get("y").orElseThrow().getValue())[0]).containsExactly(1, 2, 3, 4);
    assertThat(model.session().getInputNames()).containsExactly("x");
    // No new run starts on a closing session.
    assertThatThrownBy(() -> run(model))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("Model 'tiny'")
        .hasMessageContaining("is closed: the executor is shutting down");

    // The last run out closes it.
    inFlight.close();
    assertThat(cached.isClosed()).isTrue();
    assertThatThrownBy(() -> model.session().getInputInfo()).hasMessageContaining("closed OrtSession");
    assertThatThrownBy(inFlight::result).hasMessageContaining("The run is closed");
    inFlight.close();
  }

  @Test
  void closeAllWaitsForTheRunInFlightAndClosesRightAfterIt() throws Exception {
    ModelCache cache = new ModelCache(temp.resolve("cache"));
    LoadedModel model = tinyModel(cache);
    ModelRun inFlight = run(model);

    CompletableFuture<ShutdownSummary> closing = CompletableFuture.supplyAsync(() -> cache.closeAll(Duration.ofMinutes(1)));
    // Poll until closeAll refuses new runs: it has started and is waiting for ours.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!((CachedModel) model).isClosing()) {
      assertThat(System.nanoTime()).as("closeAll started within 30 s").isLessThan(deadline);
      Thread.onSpinWait();
    }
    assertThat(closing).isNotDone();
    assertThat(((CachedModel) model).isClosed()).isFalse();

    inFlight.close();
    ShutdownSummary summary = closing.get(30, TimeUnit.SECONDS);
    assertThat(summary.leftOpen()).isZero();
    assertThat(summary.runsInFlight()).isEqualTo(1);
    assertThat(summary.elapsedMillis()).isLessThan(Duration.ofMinutes(1).toMillis());
    assertThat(((CachedModel) model).isClosed()).isTrue();
  }

  @Test
  void idleSessionsCloseAtOnceAndClosingTwiceIsHarmless() throws Exception {
    ModelCache cache = new ModelCache(temp.resolve("cache"));
    LoadedModel model = tinyModel(cache);
    run(model).close();

    ShutdownSummary summary = cache.closeAll(Duration.ofSeconds(30));
    assertThat(summary.sessions()).isEqualTo(1);
    assertThat(summary.leftOpen()).isZero();
    assertThat(summary.runsInFlight()).isZero();
    assertThat(summary.elapsedMillis()).isLessThan(5_000);
    assertThat(((CachedModel) model).isClosed()).isTrue();
    assertThat(cache.closeAll(Duration.ZERO).sessions()).isZero();
  }
}
