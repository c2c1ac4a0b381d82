package io.github.sparkinfer.spark.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes predict() with hostile rows ({@link FuzzRows}, through {@link RowFuzzMain} in child JVMs),
 * seeded and bounded in time: dense arrays of wrong lengths, nulls at every level, NaN and Inf, and
 * VectorUDT values read from Parquet with indices out of range, negative, unsorted or duplicated,
 * indices and values of different lengths, huge or negative sizes. No row may kill the JVM or fail
 * the query (onError=null); a bad row gets a null result and a reason naming the model, a good one
 * the MLP's reference output. Budget and seed as {@link TestModelFuzzing}.
 */
class TestRowFuzzing {
  @TempDir Path folder;

  @Test
  void badRowsNeverKillTheJvmAndGetANullResultWithAClearReason() throws Exception {
    FuzzRunner.Summary summary = FuzzRunner.run("rows", RowFuzzMain.class, folder);
    assertThat(summary.tried).as(summary.report()).isPositive();
    assertThat(summary.deaths).as(summary.report()).isZero();
    assertThat(summary.unclear).as(summary.report()).isZero();
    assertThat(summary.wrong).as(summary.report()).isZero();
  }
}
