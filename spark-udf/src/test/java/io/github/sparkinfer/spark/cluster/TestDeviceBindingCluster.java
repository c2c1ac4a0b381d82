package io.github.sparkinfer.spark.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.SparkInferenceExtensions;
import io.github.sparkinfer.spark.cluster.StandaloneCluster.ExecutorRecord;
import io.github.sparkinfer.spark.cluster.StandaloneCluster.Submission;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * predict() on a real Spark standalone cluster (a Master and Workers in their own JVMs, fake GPU
 * addresses, a spark-submit driver): every task is bound to the GPU Spark assigned it, and tasks
 * sharing a GPU share one session. This ONNX Runtime build is CPU-only, so each session falls back
 * to the CPU (spark.sparkinfer.device.fallback=cpu, the default) and says so.
 *
 * <p>Each test starts its own cluster, since they need different Workers. Logs are under
 * target/standalone-cluster/.
 */
class TestDeviceBindingCluster {
  private static final int ROWS = 64;
  private static final int PARTITIONS = 8;
  private static final Duration APP_TIMEOUT = Duration.ofMinutes(3);
  private static final String CPU_PROVIDER = "CPUExecutionProvider";

  static final MultilayerPerceptronModel MLP =
      MultilayerPerceptronModel.builder()
          .layerSizes(DeviceBindingApp.INPUTS, 32, 4)
          .seed(7)
          .inputName("features")
          .outputName("scores")
          .build();

  /**
   * Two Workers with GPUs 0 and 1 each, four one-core executors with one GPU each, one GPU per
   * task: each task's binding names the address its Worker gave its executor, and asks for that
   * CUDA device.
   */
  @Test
  @Timeout(value = 4, unit = TimeUnit.MINUTES)
  void everyTaskIsBoundToTheGpuSparkAssignedIt() throws Exception {
    try (StandaloneCluster cluster =
        StandaloneCluster.builder("one-gpu-per-task")
            .worker(2, "2g", "0", "1")
            .worker(2, "2g", "0", "1")
            .start()) {
      Map<String, String> conf = appConf(cluster);
      conf.put("spark.executor.cores", "1");
      conf.put("spark.executor.resource.gpu.amount", "1");
      conf.put("spark.task.resource.gpu.amount", "1");
      conf.put("spark.cores.max", "4");
      AppOutput app = run(cluster, "one-gpu-per-task", conf, 4);

      // The cluster's own record: four executors, each given one of its Worker's two GPUs.
      List<ExecutorRecord> executors = cluster.executors(app.applicationId);
      assertThat(executors).as("executors the Workers launched").hasSize(4);
      for (StandaloneCluster.Worker worker : cluster.workers()) {
        assertThat(executors.stream()
                .filter(e -> e.worker() == worker)
                .flatMap(e -> e.addresses(StandaloneCluster.GPU).stream()))
            .as("GPU addresses %s gave its executors", worker)
            .containsExactlyInAnyOrder("0", "1");
      }
      Map<String, String> gpuOfExecutor = gpuByExecutor(executors);

      assertOneBindingPerPartition(app);
      for (Map<String, String> binding : app.bindings) {
        String address = gpuOfExecutor.get(binding.get("executor"));
        assertThat(address).as("the Worker's GPU of the executor of %s", binding).isNotNull();
        assertThat(binding)
            .as("binding of partition %s", binding.get("partition"))
            .containsEntry("assigned", address)
            .containsEntry("requested", "cuda:" + address);
        assertFellBackToCpu(binding);
      }
      assertThat(app.bindings.stream().map(b -> b.get("assigned")).collect(Collectors.toSet()))
          .as("GPU addresses the tasks ran with: those of the Workers, all of them")
          .containsExactlyInAnyOrder("0", "1");

      // Each executor, bound to one GPU, loaded the model once: its CPU session, after falling back.
      Set<String> predictExecutors = app.bindings.stream().map(b -> b.get("executor")).collect(Collectors.toSet());
      assertThat(app.caches.stream().map(CacheState::executor))
          .as("executors whose model cache was read")
          .containsAll(predictExecutors);
      for (CacheState cache : app.caches.stream().filter(c -> predictExecutors.contains(c.executor)).toList()) {
        assertThat(cache.gpu).as("task GPU on executor %s", cache.executor)
            .isEqualTo(gpuOfExecutor.get(cache.executor));
        assertThat(cache.loads).as("model loads on executor %s", cache.executor).isEqualTo(1);
        assertThat(cache.fallbacks).as("fallbacks on executor %s", cache.executor).isEqualTo(1);
        assertThat(cache.concurrent).as("predict tasks at once on one-core executor %s", cache.executor)
            .isEqualTo(1);
      }
      assertPredictions(app);
    }
  }

  /**
   * One Worker with a single GPU and four cores, one four-core executor, a quarter GPU per task:
   * four tasks share cuda:0 at once, and the executor loads the model exactly once.
   */
  @Test
  @Timeout(value = 4, unit = TimeUnit.MINUTES)
  void tasksSharingOneGpuShareOneSession() throws Exception {
    try (StandaloneCluster cluster =
        StandaloneCluster.builder("shared-gpu").worker(4, "2g", "0").start()) {
      Map<String, String> conf = appConf(cluster);
      conf.put("spark.executor.cores", "4");
      conf.put("spark.executor.resource.gpu.amount", "1");
      conf.put("spark.task.resource.gpu.amount", "0.25");
      // The first 4 tasks of a stage start together: the overlap below is then certain, not likely.
      conf.put(TaskConcurrencyPlugin.STARTING_TOGETHER, "4");
      conf.put("spark.cores.max", "4");
      AppOutput app = run(cluster, "shared-gpu", conf, 1);

      List<ExecutorRecord> executors = cluster.executors(app.applicationId);
      assertThat(executors).as("executors the Worker launched").hasSize(1);
      ExecutorRecord executor = executors.get(0);
      assertThat(executor.addresses(StandaloneCluster.GPU)).containsExactly("0");

      assertOneBindingPerPartition(app);
      for (Map<String, String> binding : app.bindings) {
        assertThat(binding)
            .as("binding of partition %s", binding.get("partition"))
            .containsEntry("executor", executor.executorId())
            .containsEntry("assigned", "0")
            .containsEntry("requested", "cuda:0");
        assertFellBackToCpu(binding);
      }

      assertThat(app.caches)
          .as("the model cache of the one executor")
          .singleElement()
          .satisfies(cache -> {
            assertThat(cache.executor).isEqualTo(executor.executorId());
            assertThat(cache.gpu).isEqualTo("0");
            assertThat(cache.loads).as("model loads").isEqualTo(1);
            assertThat(cache.fallbacks).as("CPU fallbacks").isEqualTo(1);
            assertThat(cache.concurrent).as("predict tasks running at once on the shared GPU").isEqualTo(4);
          });
      assertPredictions(app);
    }
  }

  static Map<String, String> appConf(StandaloneCluster cluster) throws Exception {
    Path model = cluster.directory().resolve("mlp.onnx");
    MLP.writeTo(model);
    Map<String, String> conf = new LinkedHashMap<>();
    conf.put("spark.sql.extensions", SparkInferenceExtensions.class.getName());
    conf.put("spark.sparkinfer.model." + DeviceBindingApp.MODEL + ".path", model.toUri().toString());
    conf.put("spark.sparkinfer.cache.dir", cluster.directory().resolve("model-cache").toString());
    conf.put("spark.executor.memory", "768m");
    conf.put("spark.plugins", TaskConcurrencyPlugin.class.getName());
    // Every executor registered before the first task, so that tasks spread over them.
    conf.put("spark.scheduler.minRegisteredResourcesRatio", "1.0");
    conf.put("spark.scheduler.maxRegisteredResourcesWaitingTime", "120s");
    return conf;
  }

  private static AppOutput run(StandaloneCluster cluster, String name, Map<String, String> conf, int executors)
      throws Exception {
    Path output = cluster.directory().resolve(name + ".out");
    Submission submission =
        cluster.submit(
            name,
            DeviceBindingApp.class,
            conf,
            List.of(output.toString(), Integer.toString(ROWS), Integer.toString(PARTITIONS),
                Integer.toString(executors)),
            APP_TIMEOUT);
    System.out.println(name + ": driver ran " + submission.took().toMillis() + " ms; " + cluster);
    assertThat(submission.succeeded()).as(submission.describe()).isTrue();
    AppOutput app = AppOutput.read(output);
    assertThat(app.executors).as("executors registered").isEqualTo(executors);
    return app;
  }

  static Map<String, String> gpuByExecutor(List<ExecutorRecord> executors) {
    Map<String, String> gpus = new HashMap<>();
    for (ExecutorRecord executor : executors) {
      assertThat(executor.addresses(StandaloneCluster.GPU)).as("GPUs of %s", executor).hasSize(1);
      gpus.put(executor.executorId(), executor.addresses(StandaloneCluster.GPU).get(0));
    }
    return gpus;
  }

  private static void assertOneBindingPerPartition(AppOutput app) {
    assertThat(app.bindings.stream().map(b -> Integer.parseInt(b.get("partition"))))
        .as("partitions of the binding records %s", app.bindings)
        .containsExactlyInAnyOrderElementsOf(IntStream.range(0, PARTITIONS).boxed().toList());
  }

  static void assertFellBackToCpu(Map<String, String> binding) {
    assertThat(binding)
        .as("binding of partition %s", binding.get("partition"))
        .containsEntry("bound", "cpu")
        .containsEntry("provider", CPU_PROVIDER);
    assertThat(binding.get("fallback"))
        .as("why partition %s fell back to the CPU", binding.get("partition"))
        .isNotEqualTo("none")
        .containsIgnoringCase("cuda");
  }

  private static void assertPredictions(AppOutput app) {
    assertThat(app.rows.keySet()).containsExactlyInAnyOrderElementsOf(
        IntStream.range(0, ROWS).mapToObj(i -> (long) i).toList());
    app.rows.forEach((id, row) -> {
      float[] expectedFeatures = DeviceBindingApp.features(id);
      assertThat(row[0]).as("features of row %d", id).containsExactly(expectedFeatures);
      float[] expected = MLP.forward(expectedFeatures);
      assertThat(row[1]).as("scores of row %d", id).hasSize(expected.length);
      for (int i = 0; i < expected.length; i++) {
        assertThat(row[1][i]).as("score %d of row %d", i, id).isCloseTo(expected[i], within(1e-5f)); // fp32 ORT against the Java forward pass, as the local tests
      }
    });
  }

  /** A model cache as a task saw it. */
  private record CacheState(String executor, long loads, long fallbacks, String gpu, int concurrent) {}

  /** What {@link DeviceBindingApp} wrote. */
  static final class AppOutput {
    String applicationId;
    int executors = -1;
    String stages;
    final List<Map<String, String>> bindings = new ArrayList<>();
    final Map<Long, float[][]> rows = new HashMap<>();
    final List<CacheState> caches = new ArrayList<>();

    static AppOutput read(Path file) throws Exception {
      AppOutput app = new AppOutput();
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        String[] parts = line.split(" ", 2);
        String value = parts.length > 1 ? parts[1] : "";
        switch (parts[0]) {
          case "app" -> app.applicationId = value;
          case "executors" -> app.executors = Integer.parseInt(value);
          case "stages" -> app.stages = value;
          case "binding" -> app.bindings.add(parseBinding(value));
          case "row" -> {
            String[] fields = value.split(" ");
            app.rows.put(Long.parseLong(fields[0]), new float[][] {floats(fields[1]), floats(fields[2])});
          }
          case "cache" -> {
            String[] fields = value.split(" ");
            app.caches.add(new CacheState(
                fields[0], Long.parseLong(fields[1]), Long.parseLong(fields[2]),
                fields[3].substring("gpu=".length()),
                Integer.parseInt(fields[4].substring("concurrent=".length()))));
          }
          default -> throw new IllegalStateException("Unexpected line in " + file + ": " + line);
        }
      }
      assertThat(app.applicationId).as("application id in %s", file).isNotNull();
      return app;
    }

    /**
     * {@code partition=<p> executor=<id> assigned=<a> requested=<d> bound=<d> provider=<p>
     * threads=<intra-op threads> fallback=<reason, may hold spaces>}.
     */
    static Map<String, String> parseBinding(String record) {
      Map<String, String> fields = new LinkedHashMap<>();
      int fallback = record.indexOf(" fallback=");
      assertThat(fallback).as("fallback= in %s", record).isPositive();
      for (String field : record.substring(0, fallback).split(" ")) {
        int equals = field.indexOf('=');
        assertThat(equals).as("field %s of %s", field, record).isPositive();
        fields.put(field.substring(0, equals), field.substring(equals + 1));
      }
      fields.put("fallback", record.substring(fallback + " fallback=".length()));
      Set<String> keys = new TreeSet<>(fields.keySet());
      assertThat(keys).as("fields of %s", record).containsExactlyInAnyOrder(
          "partition", "executor", "assigned", "requested", "bound", "provider", "threads", "fallback");
      return fields;
    }

    private static float[] floats(String text) {
      String[] parts = text.split(",");
      float[] values = new float[parts.length];
      for (int i = 0; i < parts.length; i++) {
        values[i] = Float.parseFloat(parts[i]);
      }
      return values;
    }
  }
}
