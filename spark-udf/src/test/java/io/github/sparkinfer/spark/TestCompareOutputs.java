package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** compare_outputs() against values worked out by hand. */
class TestCompareOutputs {
  private static SparkSession spark;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
  }

  private static Row compare(String left, String right) {
    return spark.sql("SELECT compare_outputs(" + left + ", " + right + ") AS c").first().getStruct(0);
  }

  @Test
  void cosineMaxErrorAndArgmaxOfTwoVectors() {
    // (3, 4) . (4, 3) = 24, both norms 5: cosine 24 / 25; errors 1 and 1; argmax 1 against 0.
    Row row = compare("array(3.0D, 4.0D)", "array(4.0D, 3.0D)");
    assertThat(row.getDouble(0)).isCloseTo(0.96, within(1e-15));
    assertThat(row.getDouble(1)).isEqualTo(1.0);
    assertThat(row.getBoolean(2)).isFalse();
  }

  @Test
  void nestedArraysAreFlattenedInRowMajorOrder() {
    // (1, 2, 3, 4) . (1, 2, 3, 5) = 34; norms^2 30 and 39; largest error 1; argmax both the last.
    Row row = compare("array(array(1.0D, 2.0D), array(3.0D, 4.0D))", "array(array(1.0D, 2.0D), array(3.0D, 5.0D))");
    assertThat(row.getDouble(0)).isCloseTo(34 / Math.sqrt(30 * 39), within(1e-15));
    assertThat(row.getDouble(1)).isEqualTo(1.0);
    assertThat(row.getBoolean(2)).isTrue();
  }

  @Test
  void floatsIntsAndScalarsAreNumbersToo() {
    Row floats = compare("array(CAST(0.5 AS FLOAT), CAST(-1.5 AS FLOAT))", "array(CAST(0.25 AS FLOAT), CAST(-1.5 AS FLOAT))");
    assertThat(floats.getDouble(1)).isEqualTo(0.25);
    Row scalars = compare("2", "CAST(5 AS BIGINT)");
    assertThat(scalars.getDouble(0)).isEqualTo(1.0);
    assertThat(scalars.getDouble(1)).isEqualTo(3.0);
    assertThat(scalars.getBoolean(2)).isTrue();
  }

  @Test
  void zeroVectorsAreIdenticalToEachOtherAndUnlikeAnythingElse() {
    assertThat(compare("array(0.0D, 0.0D)", "array(0.0D, 0.0D)").getDouble(0)).isEqualTo(1.0);
    assertThat(compare("array(0.0D, 0.0D)", "array(1.0D, 0.0D)").getDouble(0)).isEqualTo(0.0);
  }

  @Test
  void aNullOutputGivesANullComparison() {
    Row row = spark.sql("SELECT compare_outputs(CAST(NULL AS ARRAY<DOUBLE>), array(1.0D)) AS c").first();
    assertThat(row.isNullAt(0)).isTrue();
  }

  @Test
  void outputsOfDifferentSizesOrTypesAreErrors() {
    assertThatThrownBy(() -> compare("array(1.0D, 2.0D)", "array(1.0D)").getDouble(0))
        .hasMessageContaining("compare_outputs got outputs of different sizes (2 and 1 values)");
    assertThatThrownBy(() -> compare("'a'", "array(1.0D)"))
        .hasMessageContaining("compare_outputs takes two numeric values or (nested) numeric arrays");
  }
}
