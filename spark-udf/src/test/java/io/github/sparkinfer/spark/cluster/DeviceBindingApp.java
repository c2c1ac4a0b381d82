package io.github.sparkinfer.spark.cluster;

import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.spark.SparkInference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * The driver of {@link TestDeviceBindingCluster}, run by spark-submit on a {@link
 * StandaloneCluster}: a predict() query over an MLP registered as {@code mlp} (its
 * spark.sparkinfer.model.mlp.path comes with the submitted settings), then a job that reads each
 * executor's model cache. Writes what it saw to a file, one fact a line, for the test to check:
 *
 * <pre>
 * app &lt;application id&gt;
 * executors &lt;executors registered before the query&gt;
 * stages &lt;ids of the stages of the predict query, comma-separated&gt;
 * binding &lt;a record of SparkInference.deviceBindings&gt;
 * row &lt;id&gt; &lt;features, comma-separated&gt; &lt;scores, comma-separated&gt;
 * cache &lt;executor id&gt; &lt;ModelCache loadCount(mlp)&gt; &lt;fallbackCount(mlp)&gt; gpu=&lt;the task's addresses&gt;
 *     concurrent=&lt;most tasks of the query's stage that ran at once in that executor&gt;
 * </pre>
 *
 * <p>Arguments: output file, rows, partitions, executors to wait for. Run it with {@code
 * spark.plugins=}{@link TaskConcurrencyPlugin}.
 */
public final class DeviceBindingApp {
  static final String MODEL = "mlp";
  static final int INPUTS = 16;
  private static final long EXECUTOR_TIMEOUT_MS = TimeUnit.SECONDS.toMillis(120);
  private static final long LISTENER_TIMEOUT_MS = TimeUnit.SECONDS.toMillis(30);

  /** The features column of row {@code id}, in SQL: {@link #features(long)}. */
  static final String FEATURES =
      "transform(sequence(0, " + (INPUTS - 1) + "), j -> CAST((((id * " + INPUTS
          + " + j) % 23) - 11) * 0.125D AS FLOAT)) AS features";

  private DeviceBindingApp() {}

  /** The features of row {@code id}, as the query computes them: multiples of 1/8, exact in float. */
  static float[] features(long id) {
    float[] features = new float[INPUTS];
    for (int j = 0; j < INPUTS; j++) {
      features[j] = (float) ((((id * INPUTS + j) % 23) - 11) * 0.125d);
    }
    return features;
  }

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
      lines.add("executors " + awaitExecutors(context, executors));

      String uri = spark.conf().get("spark.sparkinfer.model." + MODEL + ".path");
      spark
          .range(0, rows, 1, partitions)
          .selectExpr(
              "id",
              FEATURES)
          .createOrReplaceTempView("points");

      StageListener listener = new StageListener(partitions);
      context.addSparkListener(listener);
      Dataset<Row> result =
          spark.sql("SELECT id, features, predict('" + MODEL + "', features) AS scores FROM points");
      List<Row> collected = result.collectAsList();
      listener.awaitEnded();
      context.removeSparkListener(listener);
      Set<Integer> stages = listener.stages();
      lines.add("stages " + stages.stream().map(String::valueOf).collect(Collectors.joining(",")));
      if (stages.size() != 1) {
        throw new IllegalStateException("The predict query ran in stages " + stages + ", expected one");
      }

      for (String record : SparkInference.deviceBindings(result)) {
        lines.add("binding " + record);
      }
      for (Row row : collected) {
        lines.add("row " + row.getLong(0) + " " + join(row.getList(1)) + " " + join(row.getList(2)));
      }

      // Several tasks per executor slot, so that every executor reports its cache.
      int cacheTasks = Math.max(executors * 8, 8);
      List<String> caches =
          JavaSparkContext.fromSparkContext(context)
              .parallelize(new ArrayList<>(java.util.Collections.nCopies(cacheTasks, uri)), cacheTasks)
              .mapPartitions(new ReadCache(stages.iterator().next()))
              .collect();
      for (String cache : new TreeSet<>(caches)) {
        lines.add("cache " + cache);
      }
    } finally {
      Files.write(output, lines, StandardCharsets.UTF_8);
      spark.stop();
    }
  }

  static String join(List<Object> values) {
    StringBuilder text = new StringBuilder();
    for (Object value : values) {
      text.append(text.length() == 0 ? "" : ",").append(value);
    }
    return text.toString();
  }

  /**
   * Waits until {@code expected} executors joined: the driver's list of them (it includes the
   * driver) is checked again each time a listener hears of a new one, under a deadline.
   */
  static int awaitExecutors(SparkContext context, int expected) throws InterruptedException {
    Object added = new Object();
    SparkListener listener =
        new SparkListener() {
          @Override
          public void onExecutorAdded(SparkListenerExecutorAdded executorAdded) {
            synchronized (added) {
              added.notifyAll();
            }
          }
        };
    context.addSparkListener(listener);
    try {
      long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(EXECUTOR_TIMEOUT_MS);
      synchronized (added) {
        while (true) {
          int registered = context.statusTracker().getExecutorInfos().length - 1;
          long remaining = TimeUnit.NANOSECONDS.toMillis(end - System.nanoTime());
          if (registered >= expected) {
            return registered;
          }
          if (remaining <= 0) {
            throw new IllegalStateException(
                "Only " + registered + " of " + expected + " executors registered in " + EXECUTOR_TIMEOUT_MS + " ms");
          }
          // Woken by the listener; the bound only covers an executor that joined between the check
          // and the wait, which the next check sees.
          added.wait(Math.min(remaining, 1000));
        }
      }
    } finally {
      context.removeSparkListener(listener);
    }
  }

  /**
   * Each task: {@code <executor id> <loadCount> <fallbackCount> gpu=<addresses> concurrent=<n>} of
   * its JVM, n for the predict query's stage.
   */
  static final class ReadCache implements FlatMapFunction<Iterator<String>, String> {
    private static final long serialVersionUID = 1L;
    private final int predictStage;

    ReadCache(int predictStage) {
      this.predictStage = predictStage;
    }

    @Override
    public Iterator<String> call(Iterator<String> uris) {
      List<String> out = new ArrayList<>();
      while (uris.hasNext()) {
        ModelSource source = ModelSource.of(MODEL, uris.next());
        out.add(SparkEnv.get().executorId()
            + " " + ModelCache.shared().loadCount(source)
            + " " + ModelCache.shared().fallbackCount(source)
            + " gpu=" + gpus()
            + " concurrent=" + TaskConcurrencyPlugin.maxRunning(predictStage));
      }
      return out.iterator();
    }

    private static String gpus() {
      var gpu = TaskContext.get().resourcesJMap().get("gpu");
      return gpu == null ? "none" : String.join(",", gpu.addresses());
    }
  }

  /** The stages whose tasks it saw end, and a latch counting the ends down. */
  static final class StageListener extends SparkListener {
    private final Set<Integer> stages = ConcurrentHashMap.newKeySet();
    private final CountDownLatch ends;

    StageListener(int tasks) {
      this.ends = new CountDownLatch(tasks);
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd taskEnd) {
      stages.add(taskEnd.stageId());
      ends.countDown();
    }

    Set<Integer> stages() {
      return new TreeSet<>(stages);
    }

    /** Listener events arrive asynchronously: waits until all the task ends were heard. */
    void awaitEnded() throws InterruptedException {
      if (!ends.await(LISTENER_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
        throw new IllegalStateException(ends.getCount() + " task ends not heard in " + LISTENER_TIMEOUT_MS + " ms");
      }
    }
  }
}
