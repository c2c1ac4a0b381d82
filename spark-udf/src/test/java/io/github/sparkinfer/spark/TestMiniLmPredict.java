package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.collection.Seq;

/**
 * The real all-MiniLM-L6-v2 (fp32, from langchain4j's Maven artifact) through predict(), fed
 * pre-tokenized arrays, against a direct ONNX Runtime call on the same batch.
 */
class TestMiniLmPredict {
  private static final int ROWS = 24;
  private static final int LENGTH = 12;
  private static final int HIDDEN = 384;

  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path model;
  private static long[][] ids;
  private static long[][] mask;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
    model = TestModels.copyMiniLm(folder);
    // [CLS] w1 .. wk [SEP] [PAD]..: token ids from the vocabulary's word range, varied lengths.
    SplittableRandom random = new SplittableRandom(5);
    ids = new long[ROWS][LENGTH];
    mask = new long[ROWS][LENGTH];
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      int words = 1 + random.nextInt(LENGTH - 2);
      ids[i][0] = 101;
      mask[i][0] = 1;
      for (int j = 1; j <= words; j++) {
        ids[i][j] = 1996 + random.nextInt(20000);
        mask[i][j] = 1;
      }
      ids[i][words + 1] = 102;
      mask[i][words + 1] = 1;
      rows.add(RowFactory.create((long) i, boxed(ids[i]), boxed(mask[i]), boxed(new long[LENGTH])));
    }
    StructType schema = new StructType()
        .add("id", DataTypes.LongType)
        .add("input_ids", DataTypes.createArrayType(DataTypes.LongType, false))
        .add("attention_mask", DataTypes.createArrayType(DataTypes.LongType, false))
        .add("token_type_ids", DataTypes.createArrayType(DataTypes.LongType, false));
    // One partition and one batch: the same batch as the direct call, so results are identical.
    spark.createDataFrame(rows, schema).coalesce(1).createOrReplaceTempView("tokens");
    spark.conf().set("spark.sparkinfer.model.minilm.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.minilm.batchSize", String.valueOf(ROWS));
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "minilm");
    spark.catalog().dropTempView("tokens");
  }

  @Test
  void hiddenStatesEqualDirectOrtWithinOneMillionth() throws Exception {
    Dataset<Row> result = spark.sql(
        "SELECT id, predict('minilm', input_ids, attention_mask, token_type_ids) AS hidden FROM tokens ORDER BY id");
    assertThat(result.schema().apply("hidden").dataType()).isEqualTo(
        DataTypes.createArrayType(DataTypes.createArrayType(DataTypes.FloatType, false), false));
    float[][][] reference = TestModels.runMiniLm(model, ids, mask);
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(ROWS);
    double maxDifference = 0;
    for (Row row : rows) {
      int id = (int) row.getLong(0);
      List<Seq<Float>> tokens = row.getList(1);
      assertThat(tokens).hasSize(LENGTH);
      for (int token = 0; token < LENGTH; token++) {
        List<Float> vector = JavaCollections.asJava(tokens.get(token));
        assertThat(vector).hasSize(HIDDEN);
        for (int k = 0; k < HIDDEN; k++) {
          maxDifference = Math.max(maxDifference, Math.abs(vector.get(k) - reference[id][token][k]));
        }
      }
    }
    assertThat(maxDifference).isLessThanOrEqualTo(1e-6);
  }

  @Test
  void structOfNamedFieldsFeedsTheInputsByName() throws Exception {
    List<Row> rows = spark.sql(
            "SELECT id, predict('minilm', named_struct('token_type_ids', token_type_ids,"
                + " 'attention_mask', attention_mask, 'input_ids', input_ids))[0] AS cls FROM tokens ORDER BY id")
        .collectAsList();
    float[][][] reference = TestModels.runMiniLm(model, ids, mask);
    for (Row row : rows) {
      List<Float> cls = row.getList(1);
      for (int k = 0; k < HIDDEN; k++) {
        assertThat(Math.abs(cls.get(k) - reference[(int) row.getLong(0)][0][k])).isLessThanOrEqualTo(1e-6f);
      }
    }
  }

  @Test
  void arraysOfDifferentLengthsInOneBatchAreRejectedClearly() {
    assertThatThrownBy(() -> spark.sql(
                "SELECT predict('minilm', slice(input_ids, 1, CAST(id % 2 + 4 AS INT)),"
                    + " slice(attention_mask, 1, CAST(id % 2 + 4 AS INT)),"
                    + " slice(token_type_ids, 1, CAST(id % 2 + 4 AS INT))) FROM tokens")
            .collectAsList())
        .hasStackTraceContaining("Cannot run model 'minilm': input 'input_ids' expects 4 values per row")
        .hasStackTraceContaining("dynamic length that must be equal within a batch")
        .hasStackTraceContaining("but a row has 5 values");
  }

  private static List<Long> boxed(long[] values) {
    List<Long> list = new ArrayList<>(values.length);
    for (long value : values) {
      list.add(value);
    }
    return list;
  }
}
