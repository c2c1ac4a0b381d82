package io.github.sparkinfer.spark.cluster;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.SparkStatusTracker;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import io.github.sparkinfer.spark.JavaCollections;

/**
 * The driver of {@link TestExecutorKillCluster}: while predict() runs on two executors, it kills
 * one the way dynamic allocation removes an executor (SparkContext.killExecutor: the Master has
 * the Worker stop the executor's process with SIGTERM), and the query finishes on the other.
 * Writes {@code app <id>}, {@code killed <executor id>}, {@code count <rows>} and {@code sum
 * <sum of the first score>} to the output file.
 *
 * <p>Arguments: output file, rows.
 */
public final class ExecutorKillApp {
  static final String MODEL = "wide";

  private ExecutorKillApp() {}

  public static void main(String[] arguments) throws Exception {
    Path output = Path.of(arguments[0]);
    long rows = Long.parseLong(arguments[1]);
    SparkSession spark = SparkSession.builder().getOrCreate();
    SparkContext context = spark.sparkContext();
    spark.range(0, rows, 1, 2).selectExpr("id", features()).cache().createOrReplaceTempView("points");
    String query = "SELECT count(*), sum(p[0]) FROM (SELECT predict('" + MODEL + "', features) AS p FROM points%s)";
    // Loads the model on both executors and caches the table.
    spark.sql(String.format(query, " WHERE id < 10")).collect();

    // The query again and again until the kill was sent; the last one ran through the kill.
    java.util.concurrent.atomic.AtomicBoolean sent = new java.util.concurrent.atomic.AtomicBoolean();
    CompletableFuture<Row> result = CompletableFuture.supplyAsync(() -> {
      Row last;
      do {
        last = spark.sql(String.format(query, "")).first();
      } while (!sent.get());
      return last;
    });
    String killed = null;
    SparkStatusTracker status = context.statusTracker();
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (killed == null && System.nanoTime() < deadline && !result.isDone()) {
      for (int stage : status.getActiveStageIds()) {
        SparkStageInfo info = status.getStageInfo(stage).getOrElse(() -> null);
        if (killed == null && info != null && info.numActiveTasks() == 2) {
          // Both tasks run the model now, one on each executor.
          List<String> executors = JavaCollections.asJava(context.getExecutorIds());
          killed = executors.get(0);
          if (!context.killExecutor(killed)) {
            throw new IllegalStateException("Spark refused to kill executor " + killed);
          }
          sent.set(true);
        }
      }
      try {
        // Polls the stages every 20 ms, returning at once if the query ended.
        result.get(20, TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.TimeoutException e) {
        // Not yet: look again.
      }
    }
    if (killed == null) {
      throw new IllegalStateException("No moment with both tasks running before the query ended or 2 minutes passed");
    }
    Row row = result.get(5, TimeUnit.MINUTES);
    Files.write(output, List.of("app " + context.applicationId(), "killed " + killed, "count " + row.getLong(0),
        "sum " + row.getDouble(1)), StandardCharsets.UTF_8);
    spark.stop();
  }

  static String features() {
    return "transform(sequence(1, 256), i -> CAST(((id * 31 + i) % 97) / 97.0 AS FLOAT)) AS features";
  }
}
