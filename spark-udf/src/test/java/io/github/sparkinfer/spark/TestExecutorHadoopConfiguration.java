package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.sparkinfer.spark.batch.ExecutorSessions;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.deploy.SparkHadoopUtil;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;

/**
 * The executor's Hadoop configuration is built once per SparkConf, not once per task (building one
 * parses Hadoop's XML resources: a quarter of predict()'s task time on a 16-core host), and holds
 * what a fresh one built from the same SparkConf holds.
 */
class TestExecutorHadoopConfiguration {

  @Test
  void everyTaskOfAnExecutorSharesOneConfigurationBuiltFromItsSparkConf() {
    SparkSession spark = SparkTestSessions.shared();
    MapPartitionsFunction<Long, Integer> identity =
        rows -> List.of(System.identityHashCode(ExecutorSessions.hadoopConfiguration())).iterator();
    List<Integer> identities = spark.range(0, 16, 1, 16).as(Encoders.LONG())
        .mapPartitions(identity, Encoders.INT()).collectAsList();

    assertThat(identities).hasSize(16);
    // local mode: the tasks run in the driver's JVM, on the driver's SparkEnv.
    assertThat(identities).containsOnly(System.identityHashCode(ExecutorSessions.hadoopConfiguration()));

    Configuration fresh = SparkHadoopUtil.get().newConfiguration(SparkEnv.get().conf());
    Configuration shared = ExecutorSessions.hadoopConfiguration();
    // Spark copies spark.buffer.size (64 KiB) over Hadoop's own default of 4 KiB: a configuration of Spark's.
    assertThat(shared.get("io.file.buffer.size")).isEqualTo(fresh.get("io.file.buffer.size")).isEqualTo("65536");
    assertThat(shared.get("fs.defaultFS")).isEqualTo(fresh.get("fs.defaultFS"));
  }
}
