package io.github.sparkinfer.spark.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes the model load path with mutated ONNX files ({@link ModelMutations}, through {@link
 * ModelFuzzMain} in child JVMs), seeded and bounded in time: no mutant may kill the JVM, every
 * refusal must name the model and not be a bare runtime exception or Error, and no mutant whose
 * external data lies outside its folder may load. Runs {@code sparkinfer.fuzz.seconds} (25 s by
 * default; by hand {@code -Dsparkinfer.fuzz.seconds=600}), seed {@code sparkinfer.fuzz.seed}.
 */
class TestModelFuzzing {
  @TempDir Path folder;

  @Test
  void mutatedModelsNeverKillTheJvmAndAreRefusedClearly() throws Exception {
    FuzzRunner.Summary summary = FuzzRunner.run("models", ModelFuzzMain.class, folder);
    assertThat(summary.tried).as(summary.report()).isPositive();
    assertThat(summary.deaths).as(summary.report()).isZero();
    assertThat(summary.unclear).as(summary.report()).isZero();
    assertThat(summary.wrong).as(summary.report()).isZero();
  }
}
