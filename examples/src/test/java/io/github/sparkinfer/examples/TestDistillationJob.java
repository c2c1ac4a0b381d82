package io.github.sparkinfer.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.sparkinfer.spark.SparkInference;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The worked distillation example end to end on a local Spark, with the distillation jar as users
 * get it: promoted at a reachable gate (the serving name then runs the student), refused at an
 * unreachable one (the serving name stays unregistered).
 */
class TestDistillationJob {
  private static SparkSession spark;

  @BeforeAll
  static void startSpark() {
    spark = SparkSession.builder().master("local[2]").appName("TestDistillationJob").getOrCreate();
    SparkInference.install(spark);
  }

  @AfterAll
  static void stopSpark() {
    spark.stop();
  }

  @Test
  void theStudentIsPromotedOrRefusedByItsAgreement(@TempDir Path folder) throws Exception {
    ByteArrayOutputStream printed = new ByteArrayOutputStream();
    DistillationJob.Result refused = DistillationJob.run(spark, DistillationJob.Arguments.parse("--rows", "20000",
        "--epochs", "4", "--min-agreement", "0.999"), folder, new PrintStream(printed, true, StandardCharsets.UTF_8));
    String output = printed.toString(StandardCharsets.UTF_8);
    assertThat(refused.promoted).as(output).isFalse();
    assertThat(output).contains("18,000 rows labelled").contains("3. refused: Student 'student_candidate' is not"
        + " promoted to 'scorer': on 2000 held-out rows");
    assertThat(spark.conf().contains("spark.sparkinfer.model.scorer.path")).isFalse();
    // The student learned: its agreement is far above chance (1/16), and the gate judged that figure.
    assertThat(refused.report.argmaxAgreement()).isGreaterThan(0.5);
    assertThat(refused.student.rows()).isEqualTo(18_000);

    printed.reset();
    DistillationJob.Result promoted = DistillationJob.run(spark, DistillationJob.Arguments.parse("--demo", "--rows",
        "20000", "--epochs", "4", "--min-agreement", "0.3"), folder, new PrintStream(printed, true,
        StandardCharsets.UTF_8));
    output = printed.toString(StandardCharsets.UTF_8);
    assertThat(promoted.promoted).as(output).isTrue();
    assertThat(output).contains("3. promoted to 'scorer'").contains("4. predict() over the held-out rows: teacher");
    assertThat(spark.conf().get("spark.sparkinfer.model.scorer.path"))
        .isEqualTo(folder.resolve("student.onnx").toUri().toString());
    assertThat(promoted.studentRowsPerSecond).isPositive();
  }

  @Test
  void badArgumentsSayWhatIsWrong() {
    assertThatThrownBy(() -> DistillationJob.Arguments.parse("--rows", "ten")).hasMessageContaining(
        "--rows takes a number, got 'ten'");
    assertThatThrownBy(() -> DistillationJob.Arguments.parse("--colour", "red")).hasMessageContaining(
        "Unknown argument '--colour'");
  }
}
