package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Growing windows: one partition of 3,200 texts under sortWindowRows=4096 is read as windows of
 * 1,024, 2,048 and 128 rows; rows keep their order and get the vectors that windows of 40 rows give
 * (the same texts, batched with other neighbours: equal to float rounding).
 */
class TestTextWindows {
  @TempDir static Path folder;

  private static SparkSession spark;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
    spark.conf().set("spark.sparkinfer.model.windows.path",
        TestModels.copyResource(folder, "all-minilm-l6-v2.onnx").toUri().toString());
    spark.conf().set("spark.sparkinfer.model.windows.tokenizer",
        TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json").toUri().toString());
    List<String> corpus = TestEmbed.corpus();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < 3200; i++) {
      rows.add(RowFactory.create((long) i, i % 97 == 0 ? null : corpus.get(i % corpus.size()) + " " + i));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType).add("body", DataTypes.StringType))
        .coalesce(1).createOrReplaceTempView("window_docs");
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "windows");
    spark.conf().unset("spark.sparkinfer.sortWindowRows");
  }

  @Test
  void growingWindowsKeepOrderAndVectors() {
    String query = "SELECT id, embed('windows', body) AS e FROM window_docs";
    spark.conf().set("spark.sparkinfer.sortWindowRows", "4096");
    List<Row> grown = spark.sql(query).collectAsList();
    spark.conf().set("spark.sparkinfer.sortWindowRows", "40");
    List<Row> small;
    try {
      small = spark.sql(query).collectAsList();
    } finally {
      spark.conf().unset("spark.sparkinfer.sortWindowRows");
    }
    assertThat(grown).hasSize(3200);
    double worst = 1;
    for (int i = 0; i < grown.size(); i++) {
      assertThat(grown.get(i).getLong(0)).as("row order").isEqualTo(i);
      if (i % 97 == 0) {
        assertThat(grown.get(i).isNullAt(1)).isTrue();
        continue;
      }
      List<Float> left = grown.get(i).getList(1);
      List<Float> right = small.get(i).getList(1);
      double dot = 0;
      for (int k = 0; k < left.size(); k++) {
        dot += left.get(k) * right.get(k);
      }
      worst = Math.min(worst, dot);
    }
    assertThat(worst).as("worst cosine of unit vectors, grown windows vs windows of 40").isGreaterThan(0.999999);
  }
}
