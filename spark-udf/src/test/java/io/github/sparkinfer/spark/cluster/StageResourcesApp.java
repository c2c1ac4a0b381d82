package io.github.sparkinfer.spark.cluster;

import io.github.sparkinfer.spark.SparkInference;
import io.github.sparkinfer.spark.plan.BatchPredictExec;
import io.github.sparkinfer.spark.plan.BatchPredictNodes;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkContext;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import io.github.sparkinfer.partitioning.StageResourceProfiles;
import io.github.sparkinfer.partitioning.StageResources;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF0;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * The driver of {@link TestStageResourcesCluster}, run by spark-submit: a three-stage job whose
 * middle stage runs predict() under stage resources (spark.sparkinfer.stage.* comes with the
 * submitted settings), run twice. Each stage reports, per row, the GPU addresses its task held
 * ({@code task_gpus()}): preparation (default profile) → repartition → scoring (predict(), the
 * stage's profile) → repartition → reporting (default profile). Writes one fact a line:
 *
 * <pre>
 * app &lt;application id&gt;
 * executors &lt;executors registered before the query&gt;
 * stage &lt;query&gt; &lt;stage id&gt; profile=&lt;resource profile id&gt; tasks=&lt;tasks&gt;
 * profile &lt;query&gt; &lt;the BatchPredict node's "resource profile id of the stage" metric&gt;
 * conflict &lt;the error of a query calling two models with different stage resources in one stage&gt;
 * binding &lt;query&gt; &lt;a record of SparkInference.deviceBindings&gt;
 * row &lt;query&gt; &lt;id&gt; &lt;preparing task's GPUs&gt; &lt;scoring task's GPUs&gt; &lt;reporting task's GPUs&gt; &lt;scores&gt;
 * cache &lt;executor&gt; &lt;loads&gt; &lt;fallbacks&gt; gpu=&lt;GPUs of a default-profile task&gt; concurrent=&lt;most
 *     scoring tasks of query 1 at once in that executor&gt;
 * stagecache &lt;the same, read by tasks with the inference stage's profile; with dynamic allocation
 *     only, where they run on the stage's own executors&gt;
 * </pre>
 *
 * <p>Arguments: output file, rows, partitions, executors to wait for. Run it with {@code
 * spark.plugins=}{@link TaskConcurrencyPlugin}.
 */
public final class StageResourcesApp {
  static final int QUERIES = 2;
  static final int STAGES_PER_QUERY = 3;
  private static final long STAGE_TIMEOUT_MS = TimeUnit.SECONDS.toMillis(30);

  private StageResourcesApp() {}

  public static void main(String[] args) throws Exception {
    Path output = Paths.get(args[0]);
    int rows = Integer.parseInt(args[1]);
    int partitions = Integer.parseInt(args[2]);
    int executors = Integer.parseInt(args[3]);

    SparkSession spark = SparkSession.builder().getOrCreate();
    List<String> lines = new ArrayList<>();
    try {
      SparkContext context = spark.sparkContext();
      lines.add("app " + context.applicationId());
      lines.add("executors " + DeviceBindingApp.awaitExecutors(context, executors));
      UserDefinedFunction taskGpus =
          functions.udf((UDF0<String>) StageResourcesApp::taskGpus, DataTypes.StringType).asNondeterministic();
      spark.udf().register("task_gpus", taskGpus);
      String uri = spark.conf().get("spark.sparkinfer.model." + DeviceBindingApp.MODEL + ".path");

      int scoringStage = -1;
      for (int query = 1; query <= QUERIES; query++) {
        spark
            .range(0, rows, 1, partitions)
            .selectExpr(
                "id",
                DeviceBindingApp.FEATURES,
                "task_gpus() AS prepared_on")
            .repartition(partitions)
            .createOrReplaceTempView("prepared");
        StageListener listener = new StageListener();
        context.addSparkListener(listener);
        Dataset<Row> scored = spark.sql(
            "SELECT id, prepared_on, predict('" + DeviceBindingApp.MODEL + "', features) AS scores,"
                + " task_gpus() AS scored_on FROM prepared");
        Dataset<Row> reported = scored.repartition(3).selectExpr("*", "task_gpus() AS reported_on");
        List<Row> collected = reported.collectAsList();
        Map<Integer, String> stages = listener.awaitCompleted(STAGES_PER_QUERY);
        context.removeSparkListener(listener);
        for (Map.Entry<Integer, String> stage : stages.entrySet()) {
          lines.add("stage " + query + " " + stage.getKey() + " " + stage.getValue());
          if (query == 1 && !stage.getValue().startsWith("profile=0 ")) {
            scoringStage = stage.getKey();
          }
        }
        for (BatchPredictExec node : BatchPredictNodes.in(reported.queryExecution().executedPlan())) {
          lines.add("profile " + query + " " + node.metrics().apply("stageProfile").value());
        }
        for (String record : SparkInference.deviceBindings(reported)) {
          lines.add("binding " + query + " " + record);
        }
        for (Row row : collected) {
          lines.add("row " + query + " " + row.getLong(0) + " " + row.getString(1) + " " + row.getString(3)
              + " " + row.getString(4) + " " + DeviceBindingApp.join(row.getList(2)));
        }
      }

      // A second model whose stage asks for half a GPU, called in the scoring stage of the first.
      spark.conf().set("spark.sparkinfer.model.other.path", uri);
      spark.conf().set("spark.sparkinfer.model.other.stage.task.resource.gpu.amount", "0.5");
      try {
        spark.sql("SELECT id, predict('" + DeviceBindingApp.MODEL + "', features) AS a,"
            + " predict('other', features) AS b FROM prepared").collectAsList();
        lines.add("conflict none");
      } catch (RuntimeException e) {
        // Adaptive execution may wrap it: the first IllegalArgumentException of the causes.
        Throwable cause = e;
        while (cause.getCause() != null && !(cause instanceof IllegalArgumentException)) {
          cause = cause.getCause();
        }
        lines.add("conflict " + cause.getClass().getSimpleName() + ": " + String.valueOf(cause.getMessage())
            .replace('\n', ' '));
      }

      int cacheTasks = executors * 8;
      List<String> caches =
          JavaSparkContext.fromSparkContext(context)
              .parallelize(new ArrayList<>(Collections.nCopies(cacheTasks, uri)), cacheTasks)
              .mapPartitions(new DeviceBindingApp.ReadCache(scoringStage))
              .collect();
      for (String cache : new TreeSet<>(caches)) {
        lines.add("cache " + cache);
      }
      if (context.getConf().getBoolean("spark.dynamicAllocation.enabled", false)) {
        // The same request gives the same profile: the one the scoring stages ran with.
        Map<String, String> settings = new TreeMap<>();
        for (scala.Tuple2<String, String> setting : context.getConf().getAll()) {
          settings.put(setting._1(), setting._2());
        }
        ResourceProfile profile = StageResourceProfiles.profileFor(context,
            StageResources.fromConfiguration(settings, DeviceBindingApp.MODEL), DeviceBindingApp.MODEL).orElseThrow();
        List<String> stageCaches =
            JavaSparkContext.fromSparkContext(context)
                .parallelize(new ArrayList<>(Collections.nCopies(cacheTasks, uri)), cacheTasks)
                .withResources(profile)
                .mapPartitions(new DeviceBindingApp.ReadCache(scoringStage))
                .collect();
        for (String cache : new TreeSet<>(stageCaches)) {
          lines.add("stagecache " + cache);
        }
      }
    } finally {
      Files.write(output, lines, StandardCharsets.UTF_8);
      spark.stop();
    }
  }

  /** The GPU addresses Spark gave the running task, comma-separated, or "none". */
  static String taskGpus() {
    ResourceInformation gpu = TaskContext.get().resourcesJMap().get(StandaloneCluster.GPU);
    return gpu == null || gpu.addresses().length == 0 ? "none" : String.join(",", gpu.addresses());
  }

  /** Each stage's resource profile (when submitted) and task count (when completed). */
  static final class StageListener extends SparkListener {
    private final Map<Integer, Integer> profiles = new TreeMap<>();
    private final Map<Integer, Integer> tasks = new TreeMap<>();

    @Override
    public synchronized void onStageSubmitted(SparkListenerStageSubmitted submitted) {
      profiles.put(submitted.stageInfo().stageId(), submitted.stageInfo().resourceProfileId());
    }

    @Override
    public synchronized void onStageCompleted(SparkListenerStageCompleted completed) {
      tasks.put(completed.stageInfo().stageId(), completed.stageInfo().numTasks());
      notifyAll();
    }

    /**
     * Listener events arrive asynchronously: waits, under a deadline, until {@code expected} stages
     * completed; then {@code stage id -> "profile=<id> tasks=<n>"}.
     */
    synchronized Map<Integer, String> awaitCompleted(int expected) throws InterruptedException {
      long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STAGE_TIMEOUT_MS);
      while (tasks.size() < expected) {
        long remaining = TimeUnit.NANOSECONDS.toMillis(end - System.nanoTime());
        if (remaining <= 0) {
          throw new IllegalStateException("Only stages " + tasks.keySet() + " of " + expected + " completed in "
              + STAGE_TIMEOUT_MS + " ms; submitted " + profiles.keySet());
        }
        wait(remaining);
      }
      Map<Integer, String> stages = new TreeMap<>();
      tasks.forEach((stage, count) -> stages.put(stage, "profile=" + profiles.get(stage) + " tasks=" + count));
      return stages;
    }
  }
}
