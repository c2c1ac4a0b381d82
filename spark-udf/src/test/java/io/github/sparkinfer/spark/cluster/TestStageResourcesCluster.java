package io.github.sparkinfer.spark.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.spark.cluster.StandaloneCluster.ExecutorRecord;
import io.github.sparkinfer.spark.cluster.StandaloneCluster.Submission;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Stage-level scheduling on a real standalone cluster: executors have a GPU each, but the
 * application asks for none per task (no spark.task.resource.gpu.amount); only the inference stage
 * asks for one (spark.sparkinfer.stage.task.resource.gpu.amount=1). The stages before and after it
 * run with the default profile and hold no GPU; the inference stage runs with a task resource
 * profile, each of its tasks holds its executor's GPU (so one runs at a time on a two-core
 * executor), and the model is bound to that GPU. The second run of the query reuses the profile.
 * With dynamic allocation the stage can ask for executors of its own instead.
 */
class TestStageResourcesCluster {
  private static final int ROWS = 64;
  private static final int PARTITIONS = 8;
  private static final Duration APP_TIMEOUT = Duration.ofMinutes(3);

  /** Dynamic allocation off: a task resource profile, run on the application's executors. */
  @Test
  @Timeout(value = 4, unit = TimeUnit.MINUTES)
  void onlyTheInferenceStageHoldsGpus() throws Exception {
    try (StandaloneCluster cluster = twoWorkersWithAGpuEach("stage-resources")) {
      Map<String, String> conf = TestDeviceBindingCluster.appConf(cluster);
      conf.put("spark.executor.cores", "2");
      conf.put("spark.executor.resource.gpu.amount", "1");
      conf.put("spark.cores.max", "4");
      conf.put("spark.sparkinfer.stage.task.resource.gpu.amount", "1");
      // Two CPUs per scoring task: its sessions get two intra-op threads (intraOpThreads=0 follows
      // the task's CPUs), while the default profile's tasks have one.
      conf.put("spark.sparkinfer.stage.task.cpus", "2");
      AppOutput app = run(cluster, "stage-resources", conf);

      List<ExecutorRecord> executors = cluster.executors(app.applicationId);
      assertThat(executors).as("executors the Workers launched").hasSize(2);
      Map<String, String> gpuOfExecutor = TestDeviceBindingCluster.gpuByExecutor(executors);
      assertThat(gpuOfExecutor.values()).containsExactlyInAnyOrder("0", "1");
      assertQueries(app, gpuOfExecutor);
      for (List<Map<String, String>> bindings : app.bindings.values()) {
        assertThat(bindings).allSatisfy(binding -> assertThat(binding).as("binding of a two-CPU task")
            .containsEntry("threads", "2"));
      }

      assertThat(app.caches).as("model caches of the two executors").hasSize(2);
      for (CacheState cache : app.caches) {
        assertThat(cache.loads).as("model loads on executor %s over both queries", cache.executor).isEqualTo(1);
        assertThat(cache.fallbacks).as("CPU fallbacks on executor %s", cache.executor).isEqualTo(1);
        assertThat(cache.gpu).as("GPUs of a default-profile task on executor %s", cache.executor).isEqualTo("none");
        assertThat(cache.concurrent)
            .as("scoring tasks at once on two-core executor %s with one GPU, one GPU per task", cache.executor)
            .isEqualTo(1);
      }
      assertThat(app.stageCaches).as("no stage-profile cache read without dynamic allocation").isEmpty();
      assertThat(app.conflict).as("two calls with different stage resources in one stage")
          .startsWith("IllegalArgumentException")
          .contains("models 'mlp' and 'other'")
          .contains("[task cpus=2, gpu=1] and [task cpus=2, gpu=0.5]");
    }
  }

  /**
   * Dynamic allocation on: the application's executors have no GPU; the stage asks for executors
   * with one (spark.sparkinfer.stage.executor.*), Spark starts them for the inference stage only,
   * and only they load the model.
   */
  @Test
  @Timeout(value = 4, unit = TimeUnit.MINUTES)
  void withDynamicAllocationTheInferenceStageGetsGpuExecutorsOfItsOwn() throws Exception {
    try (StandaloneCluster cluster = twoWorkersWithAGpuEach("stage-executors")) {
      Map<String, String> conf = TestDeviceBindingCluster.appConf(cluster);
      conf.put("spark.executor.cores", "1");
      conf.put("spark.cores.max", "4");
      conf.put("spark.dynamicAllocation.enabled", "true");
      conf.put("spark.dynamicAllocation.shuffleTracking.enabled", "true");
      conf.put("spark.dynamicAllocation.initialExecutors", "2");
      conf.put("spark.dynamicAllocation.minExecutors", "2");
      conf.put("spark.dynamicAllocation.maxExecutors", "2");
      // Registered cores are counted against spark.cores.max, which the stage's executors share: the
      // app waits for the two default executors itself instead.
      conf.put("spark.scheduler.minRegisteredResourcesRatio", "0");
      conf.put("spark.sparkinfer.stage.executor.cores", "1");
      conf.put("spark.sparkinfer.stage.executor.resource.gpu.amount", "1");
      conf.put("spark.sparkinfer.stage.task.resource.gpu.amount", "1");
      AppOutput app = run(cluster, "stage-executors", conf);
      for (List<Map<String, String>> bindings : app.bindings.values()) {
        assertThat(bindings).allSatisfy(binding -> assertThat(binding).as("binding of a one-CPU task")
            .containsEntry("threads", "1"));
      }

      List<ExecutorRecord> executors = cluster.executors(app.applicationId);
      List<ExecutorRecord> withGpu = executors.stream().filter(e -> !e.addresses(StandaloneCluster.GPU).isEmpty()).toList();
      List<ExecutorRecord> withoutGpu = executors.stream().filter(e -> e.addresses(StandaloneCluster.GPU).isEmpty()).toList();
      assertThat(withoutGpu).as("the application's own executors, among %s", executors).hasSize(2);
      assertThat(withGpu).as("the executors started for the inference stage, among %s", executors).hasSize(2);
      Map<String, String> gpuOfExecutor = TestDeviceBindingCluster.gpuByExecutor(withGpu);
      assertThat(gpuOfExecutor.values()).containsExactlyInAnyOrder("0", "1");
      assertQueries(app, gpuOfExecutor);

      Set<String> defaultExecutors = withoutGpu.stream().map(ExecutorRecord::executorId).collect(Collectors.toSet());
      assertThat(app.caches.stream().map(CacheState::executor).collect(Collectors.toSet()))
          .as("executors that ran default-profile tasks").isEqualTo(defaultExecutors);
      for (CacheState cache : app.caches) {
        assertThat(cache.loads).as("model loads on default-profile executor %s", cache.executor).isZero();
        assertThat(cache.gpu).as("GPUs of a default-profile task on executor %s", cache.executor).isEqualTo("none");
      }
      assertThat(app.stageCaches.stream().map(CacheState::executor).collect(Collectors.toSet()))
          .as("executors that ran tasks with the stage's profile").isEqualTo(gpuOfExecutor.keySet());
      for (CacheState cache : app.stageCaches) {
        assertThat(cache.loads).as("model loads on GPU executor %s over both queries", cache.executor).isEqualTo(1);
        assertThat(cache.fallbacks).as("CPU fallbacks on executor %s", cache.executor).isEqualTo(1);
        assertThat(cache.gpu).as("GPU of a stage-profile task on executor %s", cache.executor)
            .isEqualTo(gpuOfExecutor.get(cache.executor));
      }
    }
  }

  /** Two Workers of two cores, the first with GPU 0, the second with GPU 1. */
  private static StandaloneCluster twoWorkersWithAGpuEach(String name) throws Exception {
    return StandaloneCluster.builder(name).worker(2, "2g", "0").worker(2, "2g", "1").start();
  }

  private static AppOutput run(StandaloneCluster cluster, String name, Map<String, String> conf) throws Exception {
    Path output = cluster.directory().resolve(name + ".out");
    Submission submission = cluster.submit(name, StageResourcesApp.class, conf,
        List.of(output.toString(), Integer.toString(ROWS), Integer.toString(PARTITIONS), "2"), APP_TIMEOUT);
    System.out.println(name + ": driver ran " + submission.took().toMillis() + " ms; " + cluster);
    assertThat(submission.succeeded()).as(submission.describe()).isTrue();
    return AppOutput.read(output);
  }

  /**
   * Both runs of the query: three stages, only the scoring one with a profile of its own (the same
   * one both times); rows prepared and reported by tasks without GPUs and scored by tasks holding
   * one, with the right scores; every partition bound to its executor's GPU.
   */
  private static void assertQueries(AppOutput app, Map<String, String> gpuOfExecutor) {
    Integer inferenceProfile = null;
    for (int query = 1; query <= StageResourcesApp.QUERIES; query++) {
      Map<Integer, String> stages = app.stages.get(query);
      assertThat(stages).as("stages of query %d", query).hasSize(StageResourcesApp.STAGES_PER_QUERY);
      List<Integer> profiles = stages.values().stream()
          .map(stage -> Integer.parseInt(stage.split(" ")[0].substring("profile=".length()))).toList();
      assertThat(profiles).as("resource profiles of the stages %s of query %d", stages, query)
          .filteredOn(profile -> profile != 0).hasSize(1);
      assertThat(profiles).filteredOn(profile -> profile == 0).hasSize(2);
      int profile = profiles.stream().filter(id -> id != 0).findFirst().orElseThrow();
      assertThat(app.profileMetric.get(query)).as("the BatchPredict node's profile metric, query %d", query)
          .isEqualTo(profile);
      if (inferenceProfile == null) {
        inferenceProfile = profile;
      }
      assertThat(profile).as("profile of query %d: the first query's, reused", query).isEqualTo(inferenceProfile);

      List<String[]> rows = app.rows.get(query);
      assertThat(rows.stream().map(row -> Long.parseLong(row[0])))
          .as("ids of query %d", query)
          .containsExactlyInAnyOrderElementsOf(IntStream.range(0, ROWS).mapToObj(i -> (long) i).toList());
      for (String[] row : rows) {
        assertThat(row[1]).as("GPUs of the task that prepared row %s", row[0]).isEqualTo("none");
        assertThat(row[2]).as("GPUs of the task that scored row %s", row[0]).isIn("0", "1");
        assertThat(row[3]).as("GPUs of the task that reported row %s", row[0]).isEqualTo("none");
        assertScores(Long.parseLong(row[0]), row[4]);
      }
      assertThat(rows.stream().map(row -> row[2]).collect(Collectors.toSet()))
          .as("GPUs the scoring tasks held: both executors'").containsExactlyInAnyOrder("0", "1");

      List<Map<String, String>> bindings = app.bindings.get(query);
      assertThat(bindings.stream().map(b -> Integer.parseInt(b.get("partition"))))
          .as("partitions of the binding records of query %d", query)
          .containsExactlyInAnyOrderElementsOf(IntStream.range(0, PARTITIONS).boxed().toList());
      for (Map<String, String> binding : bindings) {
        String address = gpuOfExecutor.get(binding.get("executor"));
        assertThat(address).as("GPU of the executor of %s", binding).isNotNull();
        assertThat(binding).as("binding of partition %s, query %d", binding.get("partition"), query)
            .containsEntry("assigned", address)
            .containsEntry("requested", "cuda:" + address);
        TestDeviceBindingCluster.assertFellBackToCpu(binding);
      }
    }
  }

  private static void assertScores(long id, String scores) {
    float[] expected = TestDeviceBindingCluster.MLP.forward(DeviceBindingApp.features(id));
    String[] values = scores.split(",");
    assertThat(values).as("scores of row %d", id).hasSize(expected.length);
    for (int i = 0; i < expected.length; i++) {
      assertThat(Float.parseFloat(values[i])).as("score %d of row %d", i, id).isCloseTo(expected[i], within(1e-5f)); // fp32 ORT against the Java forward pass, as the local tests
    }
  }

  private record CacheState(String executor, long loads, long fallbacks, String gpu, int concurrent) {}

  /** What {@link StageResourcesApp} wrote, by query. */
  private static final class AppOutput {
    String applicationId;
    final Map<Integer, Map<Integer, String>> stages = new TreeMap<>();
    final Map<Integer, Integer> profileMetric = new HashMap<>();
    final Map<Integer, List<Map<String, String>>> bindings = new HashMap<>();
    final Map<Integer, List<String[]>> rows = new HashMap<>();
    final List<CacheState> caches = new ArrayList<>();
    final List<CacheState> stageCaches = new ArrayList<>();
    String conflict;

    static AppOutput read(Path file) throws Exception {
      AppOutput app = new AppOutput();
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        String[] parts = line.split(" ", 3);
        switch (parts[0]) {
          case "app" -> app.applicationId = parts[1];
          case "executors" -> assertThat(Integer.parseInt(parts[1])).as("executors registered").isEqualTo(2);
          case "stage" -> {
            String[] stage = parts[2].split(" ", 2);
            app.stages.computeIfAbsent(Integer.parseInt(parts[1]), q -> new TreeMap<>())
                .put(Integer.parseInt(stage[0]), stage[1]);
          }
          case "conflict" -> app.conflict = line.substring("conflict ".length());
          case "profile" -> app.profileMetric.put(Integer.parseInt(parts[1]), Integer.parseInt(parts[2]));
          case "binding" -> app.bindings.computeIfAbsent(Integer.parseInt(parts[1]), q -> new ArrayList<>())
              .add(TestDeviceBindingCluster.AppOutput.parseBinding(parts[2]));
          case "row" -> app.rows.computeIfAbsent(Integer.parseInt(parts[1]), q -> new ArrayList<>())
              .add(parts[2].split(" "));
          case "cache", "stagecache" -> {
            String[] fields = (parts[1] + " " + parts[2]).split(" ");
            (parts[0].equals("cache") ? app.caches : app.stageCaches).add(new CacheState(fields[0], Long.parseLong(fields[1]), Long.parseLong(fields[2]),
                fields[3].substring("gpu=".length()),
                Integer.parseInt(fields[4].substring("concurrent=".length()))));
          }
          default -> throw new IllegalStateException("Unexpected line in " + file + ": " + line);
        }
      }
      assertThat(app.applicationId).as("application id in %s", file).isNotNull();
      assertThat(app.stages.keySet()).as("queries in %s", file)
          .containsExactlyElementsOf(IntStream.rangeClosed(1, StageResourcesApp.QUERIES).boxed().toList());
      Set<Integer> queries = app.rows.keySet();
      assertThat(queries).isEqualTo(app.stages.keySet());
      return app;
    }
  }
}
