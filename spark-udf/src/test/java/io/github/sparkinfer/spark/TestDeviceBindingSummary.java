package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Device bindings over many tasks: what every task's TaskInfo carries stays the same size whatever
 * the task count (no accumulator whose value is the list of all tasks' records so far, which made
 * the driver's work quadratic), and the driver's summary is bounded: one line per distinct
 * binding with its task count, and at most 1,024 per-task records.
 */
class TestDeviceBindingSummary {
  private static final int PARTITIONS = 2000;

  @TempDir static Path folder;
  private static SparkSession spark;
  private static Dataset<Row> scored;
  private static final AtomicInteger taskEnds = new AtomicInteger();
  private static final AtomicInteger bindingAccumulables = new AtomicInteger();
  private static final AtomicLong largestAccumulable = new AtomicLong();

  @BeforeAll
  static void runOverManyPartitions() throws Exception {
    spark = SparkTestSessions.shared();
    spark.conf().set("spark.sparkinfer.model.many.path", TestModels.writeMlp(folder).toUri().toString());
    SparkListener listener = new SparkListener() {
      @Override
      public void onTaskEnd(SparkListenerTaskEnd end) {
        taskEnds.incrementAndGet();
        scala.collection.Iterator<AccumulableInfo> infos = end.taskInfo().accumulables().iterator();
        while (infos.hasNext()) {
          AccumulableInfo info = infos.next();
          if (info.name().isDefined() && info.name().get().contains("device bindings")) {
            bindingAccumulables.incrementAndGet();
          }
          if (info.value().isDefined()) {
            largestAccumulable.accumulateAndGet(String.valueOf(info.value().get()).length(), Math::max);
          }
        }
      }
    };
    spark.sparkContext().addSparkListener(listener);
    try {
      scored = spark.range(0, PARTITIONS, 1, PARTITIONS)
          .selectExpr("id", "predict('many', array_repeat(CAST(id AS FLOAT), 16)) AS scores");
      assertThat(scored.collectAsList()).hasSize(PARTITIONS);
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (taskEnds.get() < PARTITIONS && System.nanoTime() < deadline) {
        Thread.onSpinWait();
      }
    } finally {
      spark.sparkContext().removeSparkListener(listener);
    }
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "many");
  }

  @Test
  void taskInfosCarryNoGrowingListOfBindings() {
    assertThat(taskEnds.get()).as("task ends seen").isGreaterThanOrEqualTo(PARTITIONS);
    assertThat(bindingAccumulables.get()).as("TaskInfo accumulables naming the device bindings").isZero();
    assertThat(largestAccumulable.get()).as("longest accumulable value in a TaskInfo").isLessThan(1000);
  }

  @Test
  void theDriversSummaryIsBoundedAndCountsEveryTask() {
    List<String> summary = SparkInference.deviceBindingSummary(scored);
    assertThat(summary).hasSize(1);
    assertThat(summary.get(0)).startsWith("tasks=" + PARTITIONS + " executor=driver assigned=none")
        .contains("requested=cpu").contains("bound=cpu").endsWith("fallback=none");
    List<String> records = SparkInference.deviceBindings(scored);
    assertThat(records).hasSize(1024).allSatisfy(record -> assertThat(record).matches("partition=\\d+ executor=driver .*"));
    assertThat(records).doesNotHaveDuplicates();
  }
}
