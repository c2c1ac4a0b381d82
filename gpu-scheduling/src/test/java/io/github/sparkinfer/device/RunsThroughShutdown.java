package io.github.sparkinfer.device;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.conf.Configuration;

/**
 * The child JVM of {@link TestOrtEnvironmentAtShutdown}: threads run all-MiniLM-L6-v2 through the
 * shared model cache without a pause, and the JVM exits while they do, as an executor does on
 * SIGTERM. The cache's shutdown hook then waits for the runs in flight while every other shutdown
 * hook (ONNX Runtime's own among them) runs beside it. Prints {@code RUN FAILED} and the error if a
 * run fails other than by being refused as the cache closes.
 *
 * <p>Arguments: a folder for the model (the cache's folder is java.io.tmpdir's default).
 */
final class RunsThroughShutdown {
  private static final int THREADS = 2;

  private RunsThroughShutdown() {}

  public static void main(String[] arguments) throws Exception {
    Path model = OnnxModels.copyMiniLm(Path.of(arguments[0]).resolve("minilm.onnx"));
    LoadedModel loaded = ModelCache.shared().acquire(ModelSource.of("minilm", model.toUri().toString()),
        SessionSettings.builder().build(), new Configuration());
    Runtime.getRuntime().addShutdownHook(new Thread(() -> lateSession((CachedModel) loaded), "late-session"));
    AtomicLong runs = new AtomicLong();
    for (int i = 0; i < THREADS; i++) {
      Thread runner = new Thread(() -> runUntilRefused(loaded, runs), "runner-" + i);
      // Daemon, as Spark's task threads are: they run on while the shutdown hooks do.
      runner.setDaemon(true);
      runner.start();
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (runs.get() < 20 && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    System.out.println("RUNNING after " + runs.get() + " runs");
    System.out.flush();
    System.exit(0);
  }

  private static void lateSession(CachedModel cached) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!cached.isClosed() && System.nanoTime() < deadline) {
      Thread.onSpinWait();
    }
    OrtEnvironment environment = OrtEnvironments.get();
    try (OrtSession session = environment.createSession(OnnxModels.identity(OnnxModels.FLOAT, "batch", 4),
            new OrtSession.SessionOptions());
        OnnxTensor x = OnnxTensor.createTensor(environment, new float[][] {{1, 2, 3, 4}});
        OrtSession.Result result = session.run(Map.of("x", x))) {
      System.out.println("LATE SESSION OK " + java.util.Arrays.toString(((float[][]) result.get(0).getValue())[0]));
    } catch (Throwable failure) {
      System.out.println("LATE SESSION FAILED " + failure);
    }
    System.out.flush();
  }

  private static void runUntilRefused(LoadedModel model, AtomicLong runs) {
    OrtEnvironment environment = OrtEnvironments.get();
    long[][] ids = new long[8][128];
    long[][] mask = new long[8][128];
    for (long[] row : mask) {
      java.util.Arrays.fill(row, 1);
    }
    while (true) {
      try (OnnxTensor idTensor = OnnxTensor.createTensor(environment, ids);
          OnnxTensor maskTensor = OnnxTensor.createTensor(environment, mask);
          OnnxTensor typeTensor = OnnxTensor.createTensor(environment, ids);
          ModelRun run = model.run(Map.of("input_ids", idTensor, "attention_mask", maskTensor,
              "token_type_ids", typeTensor), Set.of("last_hidden_state"), Map.of())) {
        run.result().get(0).getInfo();
        runs.incrementAndGet();
      } catch (IllegalStateException refused) {
        // The cache is closing: no new run starts.
        return;
      } catch (Throwable failure) {
        System.out.println("RUN FAILED " + failure);
        failure.printStackTrace(System.out);
        System.out.flush();
        return;
      }
    }
  }
}
