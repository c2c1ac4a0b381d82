package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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

/**
 * embed() over texts its tokenizer or its model cannot take. The tokenizer is a word-level one with
 * no unknown token, so Hugging Face's tokenizers fail on a word outside its vocabulary; the model
 * looks token ids up in a table of 10 rows, so ONNX Runtime rejects the id of "big" (50).
 */
class TestTextRowErrors {
  private static final Map<String, Integer> VOCABULARY = Map.of("the", 1, "cat", 2, "sat", 3, "mat", 4, "big", 50);
  private static final int TABLE_ROWS = 10;
  private static final List<String> TEXTS = new ArrayList<>();

  @TempDir static Path folder;
  private static SparkSession spark;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    String[] words = {"the", "cat", "sat", "mat"};
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      String text = words[i % 4] + " " + words[(i / 4) % 4] + (i % 3 == 0 ? " " + words[(i / 3) % 4] : "");
      if (i == 17 || i == 120) {
        text = "the dog sat";  // "dog": the tokenizer fails
      } else if (i == 40 || i == 41 || i == 199) {
        text = "the big cat";  // "big": id 50, outside the model's table
      }
      TEXTS.add(text);
      rows.add(RowFactory.create((long) i, text));
    }
    StructType schema = new StructType().add("id", DataTypes.LongType, false).add("body", DataTypes.StringType, false);
    spark.createDataFrame(rows, schema).coalesce(1).createOrReplaceTempView("sentences");
    spark.sql("SET spark.sparkinfer.model.words.path=" + writeModel().toUri());
    spark.sql("SET spark.sparkinfer.model.words.tokenizer=" + writeTokenizer().toUri());
  }

  @AfterAll
  static void tearDown() {
    spark.catalog().dropTempView("sentences");
    SparkInference.unregister(spark, "words");
    SparkTestSessions.reset("spark.sparkinfer.model.words.onError");
  }

  @Test
  void embedWithErrorGivesTheReasonForEachTextItCannotTakeAndVectorsForTheRest() {
    assertReasonsAndVectors(spark.sql(
        "SELECT id, e.result, e.error FROM (SELECT id, embed_with_error('words', body) AS e FROM sentences)"));
  }

  /** The same through the executor's shared queue, the texts of four tasks batched together. */
  @Test
  void theSameReasonsAndVectorsWhenTasksShareBatches() {
    spark.conf().set("spark.sparkinfer.model.words.crossTaskBatching", "true");
    try {
      assertReasonsAndVectors(spark.sql("SELECT id, e.result, e.error FROM (SELECT id, embed_with_error('words', body)"
          + " AS e FROM (SELECT /*+ REPARTITION(4) */ * FROM sentences))"));
      assertThatThrownBy(() -> spark.sql("SELECT embed('words', body) FROM (SELECT /*+ REPARTITION(4) */ * FROM"
          + " sentences WHERE body NOT LIKE '%dog%')").collect())
          .hasMessageContaining("Model 'words' cannot take this text (3 tokens)")
          .hasMessageMatching("(?s).*\\(row [0-9]+ of partition [0-3]\\).*");
    } finally {
      SparkTestSessions.reset("spark.sparkinfer.model.words.crossTaskBatching");
    }
  }

  private static void assertReasonsAndVectors(Dataset<Row> result) {
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(TEXTS.size());
    for (Row row : rows) {
      int id = (int) row.getLong(0);
      String text = TEXTS.get(id);
      if (text.contains("dog")) {
        assertThat(row.isNullAt(1)).isTrue();
        assertThat(row.getString(2)).startsWith("The tokenizer of model 'words' failed on this text");
      } else if (text.contains("big")) {
        assertThat(row.isNullAt(1)).isTrue();
        assertThat(row.getString(2)).startsWith("Model 'words' cannot take this text (3 tokens): ").contains("indices");
      } else {
        assertThat(row.isNullAt(2)).as("error of %s", text).isTrue();
        List<Float> vector = row.getList(1);
        float[] expected = expectedVector(text);
        for (int k = 0; k < expected.length; k++) {
          assertThat(vector.get(k)).isCloseTo(expected[k], within(1e-6f));
        }
      }
    }
    assertThat(TestPredictSql.metric(result, "errorRows")).isEqualTo(5);
    assertThat(TestPredictSql.metric(result, "modelRows")).isEqualTo(TEXTS.size() - 5);
  }

  @Test
  void byDefaultTheQueryFailsNamingTheRow() {
    assertThatThrownBy(() -> spark.sql("SELECT embed('words', body) FROM sentences").collect())
        .hasMessageContaining("The tokenizer of model 'words' failed on this text")
        .hasMessageContaining("(row 17 of partition 0)");
    assertThatThrownBy(() -> spark.sql("SELECT embed('words', body) FROM sentences WHERE body NOT LIKE '%dog%'").collect())
        .hasMessageContaining("Model 'words' cannot take this text (3 tokens)")
        // id 40 is the 39th row that reaches the call: id 17 is filtered out
        .hasMessageContaining("(row 39 of partition 0)");
    spark.conf().set("spark.sparkinfer.model.words.onError", "null");
    try {
      assertThat(spark.sql("SELECT embed('words', body) AS v FROM sentences").where("v IS NULL").count()).isEqualTo(5);
    } finally {
      SparkTestSessions.reset("spark.sparkinfer.model.words.onError");
    }
  }

  /** Mean of the table rows of the text's ids, at unit length; the table row r is (r + 1, 2r - 3). */
  private static float[] expectedVector(String text) {
    double first = 0;
    double second = 0;
    String[] words = text.split(" ");
    for (String word : words) {
      int id = VOCABULARY.get(word);
      first += id + 1;
      second += 2 * id - 3;
    }
    first /= words.length;
    second /= words.length;
    double norm = Math.sqrt(first * first + second * second);
    return new float[] {(float) (first / norm), (float) (second / norm)};
  }

  private static Path writeModel() throws Exception {
    float[] table = new float[TABLE_ROWS * 2];
    for (int r = 0; r < TABLE_ROWS; r++) {
      table[2 * r] = r + 1;
      table[2 * r + 1] = 2 * r - 3;
    }
    Path file = folder.resolve("words.onnx");
    OnnxModelBuilder.create("words")
        .input("input_ids", OnnxElementType.INT64, "batch", "tokens")
        .initializer("table", table, TABLE_ROWS, 2)
        .node("Gather", List.of("table", "input_ids"), List.of("last_hidden_state"))
        .output("last_hidden_state", OnnxElementType.FLOAT, "batch", "tokens", 2)
        .writeTo(file);
    return file;
  }

  /** A word-level tokenizer.json (Hugging Face tokenizers format) with no unknown token in its vocabulary. */
  private static Path writeTokenizer() throws Exception {
    StringBuilder vocabulary = new StringBuilder();
    VOCABULARY.forEach((word, id) ->
        vocabulary.append(vocabulary.length() == 0 ? "" : ", ").append('"').append(word).append("\": ").append(id));
    String json = "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [],"
        + " \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"post_processor\": null,"
        + " \"decoder\": null, \"model\": {\"type\": \"WordLevel\", \"vocab\": {" + vocabulary + "},"
        + " \"unk_token\": \"[UNK]\"}}";
    Path file = folder.resolve("words-tokenizer.json");
    Files.writeString(file, json);
    return file;
  }
}
