package io.github.sparkinfer.benchmarks;

import static org.apache.spark.sql.functions.col;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanExec;
import org.apache.spark.sql.execution.adaptive.QueryStageExec;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The runner every benchmark shares for its Spark variants: time a query N times after an untimed
 * warm-up, writing to the noop sink (every value computed, nothing stored); collect chosen rows to
 * check them against a reference; find metrics in an executed plan.
 */
final class QueryRunner {
  private QueryRunner() {}

  /**
   * Times {@code query} {@code repeat} times to the noop sink, after one untimed run of {@code
   * warmUp}; {@code rows} is what one run processes.
   */
  static Measurement time(String key, String label, long rows, int repeat, Supplier<Dataset<Row>> query,
      Supplier<Dataset<Row>> warmUp) {
    Measurement measurement = new Measurement(key, label, rows);
    writeToNoop(warmUp.get());
    for (int i = 0; i < repeat; i++) {
      long start = System.nanoTime();
      writeToNoop(query.get());
      measurement.add(System.nanoTime() - start);
    }
    return measurement;
  }

  /** Times {@code run} (a loop outside Spark, such as raw ONNX Runtime) {@code repeat} times; warm it up first. */
  static Measurement timeRuns(String key, String label, long rows, int repeat, Run run) throws Exception {
    Measurement measurement = new Measurement(key, label, rows);
    for (int i = 0; i < repeat; i++) {
      long start = System.nanoTime();
      run.run();
      measurement.add(System.nanoTime() - start);
    }
    return measurement;
  }

  /** {@link #time} with the warm-up on the rows whose id is below {@code warmUpRows}. */
  static Measurement time(String key, String label, long rows, int repeat, Supplier<Dataset<Row>> query,
      long warmUpRows) {
    return time(key, label, rows, repeat, query, () -> query.get().where(col("id").lt(warmUpRows)));
  }

  /** Every node of {@code plan}, also those inside adaptive execution's query stages. */
  static void visit(SparkPlan plan, Consumer<SparkPlan> action) {
    action.accept(plan);
    if (plan instanceof AdaptiveSparkPlanExec) {
      visit(((AdaptiveSparkPlanExec) plan).executedPlan(), action);
    } else if (plan instanceof QueryStageExec) {
      visit(((QueryStageExec) plan).plan(), action);
    }
    for (SparkPlan child : CollectionConverters.asJava(plan.children())) {
      visit(child, action);
    }
  }


  /** Makes Spark compute every column of every row, and store nothing. */
  static void writeToNoop(Dataset<Row> result) {
    result.write().format("noop").mode(SaveMode.Overwrite).save();
  }



  static Map<Long, float[]> collect(Dataset<Row> result, long[] ids) {
    Object[] boxed = Arrays.stream(ids).boxed().toArray();
    Map<Long, float[]> scores = new LinkedHashMap<>();
    for (Row row : result.where(col("id").isin(boxed)).collectAsList()) {
      List<Object> values = row.getList(1);
      float[] array = new float[values.size()];
      for (int i = 0; i < array.length; i++) {
        array[i] = ((Number) values.get(i)).floatValue();
      }
      scores.put(row.getLong(0), array);
    }
    return scores;
  }



  static double maxAbsoluteDifference(float[] actual, float[] expected) {
    if (actual == null || actual.length != expected.length) {
      return Double.POSITIVE_INFINITY;
    }
    double max = 0;
    for (int i = 0; i < actual.length; i++) {
      max = Math.max(max, Math.abs((double) actual[i] - expected[i]));
    }
    return max;
  }

  /** One timed run of a loop outside Spark. */
  @FunctionalInterface
  interface Run {
    void run() throws Exception;
  }
}
