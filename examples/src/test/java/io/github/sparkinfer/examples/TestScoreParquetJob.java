package io.github.sparkinfer.examples;

import static org.apache.spark.sql.functions.col;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.SparkInference;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestScoreParquetJob {
  private static final int ROWS = 2000;

  private static SparkSession spark;

  @BeforeAll
  static void startSpark() {
    spark = SparkSession.builder().master("local[2]").appName("TestScoreParquetJob").getOrCreate();
    // What main() does after building its session.
    SparkInference.install(spark);
  }

  @AfterAll
  static void stopSpark() {
    if (spark != null) {
      spark.stop();
    }
  }

  @Test
  void demoScoresEveryRowLikeForward(@TempDir Path folder) throws Exception {
    JobArguments arguments =
        JobArguments.parse("--demo", "--rows", String.valueOf(ROWS), "--batch-size", "256",
            "--work-dir", folder.toString());
    ByteArrayOutputStream printed = new ByteArrayOutputStream();

    int status =
        ScoreParquetJob.run(spark, arguments, new PrintStream(printed, true, StandardCharsets.UTF_8));

    String output = printed.toString(StandardCharsets.UTF_8);
    assertThat(status).as(output).isZero();
    assertThat(output).contains("Scored " + ROWS + " rows").contains("rows/s").contains(": OK");

    // Checked here from the written files, independently of the job's own check.
    List<Row> written =
        spark.read().parquet(folder.resolve("scored.parquet").toString())
            .select("id", "features", "prediction")
            .collectAsList();
    assertThat(written).hasSize(ROWS);
    assertThat(written.stream().map(row -> row.getLong(0)).distinct().count()).isEqualTo(ROWS);

    MultilayerPerceptronModel model = ScoreParquetJob.demoModel();
    List<Row> checked =
        spark.read().parquet(folder.resolve("scored.parquet").toString())
            .where(col("id").isin(0L, 1L, 999L, 1000L, 1999L))
            .select("id", "features", "prediction")
            .collectAsList();
    assertThat(checked).hasSize(5);
    for (Row row : checked) {
      float[] expected = model.forward(ScoreParquetJob.floats(row.getList(1)));
      float[] scores = ScoreParquetJob.floats(row.getList(2));
      assertThat(scores).as("scores of id %d", row.getLong(0)).hasSize(16);
      for (int i = 0; i < scores.length; i++) {
        assertThat(scores[i]).as("score %d of id %d", i, row.getLong(0)).isCloseTo(expected[i], within(1e-5f));
      }
    }
  }

  @Test
  void refusesToOverwriteWithoutTheFlag(@TempDir Path folder) throws Exception {
    JobArguments demo =
        JobArguments.parse("--demo", "--rows", "100", "--work-dir", folder.toString());
    ScoreParquetJob.run(spark, demo, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    String scored = folder.resolve("scored.parquet").toString();

    JobArguments again =
        JobArguments.parse("--input", folder.resolve("input.parquet").toString(),
            "--output", scored, "--model", folder.resolve("mlp.onnx").toString());

    assertThatThrownBy(() -> ScoreParquetJob.score(spark, again))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(scored)
        .hasMessageContaining("--overwrite");
  }

  @Test
  void rejectsInconsistentArguments() {
    assertThatThrownBy(() -> JobArguments.parse("--input", "in.parquet", "--model", "m.onnx"))
        .hasMessageContaining("Missing --output");
    assertThatThrownBy(() -> JobArguments.parse("--demo", "--input", "in.parquet"))
        .hasMessageContaining("Cannot use --input with --demo");
    assertThatThrownBy(() -> JobArguments.parse("--demo", "--rows", "0"))
        .hasMessageContaining("Invalid value 0 for --rows");
    assertThatThrownBy(() -> JobArguments.parse("--demo", "--batch-size"))
        .hasMessageContaining("Missing value after --batch-size");
  }
}
