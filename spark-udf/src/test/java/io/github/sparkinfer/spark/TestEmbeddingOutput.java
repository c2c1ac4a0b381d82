package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.offset;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.github.sparkinfer.compression.Attribute;
import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which output embed() reads ({@code embeddingOutput}), and how it pools, on a generated text model
 * whose outputs are arithmetic on the token ids, so that every expected embedding is computed here
 * from DJL's tokenizer called directly on all-MiniLM-L6-v2's tokenizer.json: output {@code pooled}
 * [batch, 2] = (sum of the ids, number of tokens), listed first; output {@code tokens}
 * [batch, tokens, 2] = (id, 1) per token.
 */
class TestEmbeddingOutput {
  private static final String MODEL = "ids_text";
  private static final String PREFIX = "spark.sparkinfer.model." + MODEL + ".";

  @TempDir static Path folder;

  private static SparkSession spark;
  private static final List<String> TEXTS = List.of(
      "A short one.",
      "",
      "Spark runs the model in the executors, batch after batch, and never once per row.",
      "Numbers 12345 and symbols #$% tokenize into several pieces",
      "ünïcödé wörds and emoji 🙂 too");
  private static final Map<Long, long[]> IDS = new HashMap<>();

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    Path model = folder.resolve("ids-text.onnx");
    OnnxModelBuilder.create("ids_text")
        .input("input_ids", OnnxElementType.INT64, "batch", "sequence")
        .input("attention_mask", OnnxElementType.INT64, "batch", "sequence")
        .input("token_type_ids", OnnxElementType.INT64, "batch", "sequence")
        .initializer("axis1", new long[] {1}, 1)
        .initializer("axis2", new long[] {2}, 1)
        .node("Cast", List.of("input_ids"), List.of("ids"), Attribute.ofInt("to", 1))
        .node("Cast", List.of("attention_mask"), List.of("mask"), Attribute.ofInt("to", 1))
        .node("Mul", List.of("ids", "mask"), List.of("masked"))
        .node("ReduceSum", List.of("masked", "axis1"), List.of("id_sum"), Attribute.ofInt("keepdims", 1))
        .node("ReduceSum", List.of("mask", "axis1"), List.of("count"), Attribute.ofInt("keepdims", 1))
        .node("Concat", List.of("id_sum", "count"), List.of("pooled"), Attribute.ofInt("axis", 1))
        .node("Unsqueeze", List.of("ids", "axis2"), List.of("ids3"))
        .node("Unsqueeze", List.of("mask", "axis2"), List.of("mask3"))
        .node("Concat", List.of("ids3", "mask3"), List.of("tokens"), Attribute.ofInt("axis", 2))
        .output("pooled", OnnxElementType.FLOAT, "batch", 2)
        .output("tokens", OnnxElementType.FLOAT, "batch", "sequence", 2)
        .writeTo(model);
    Path tokenizer = TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json");
    spark.conf().set(PREFIX + "path", model.toUri().toString());
    spark.conf().set(PREFIX + "tokenizer", tokenizer.toUri().toString());
    // The reference ids: DJL's tokenizer itself, truncating at the tokenizer.json's 128.
    try (HuggingFaceTokenizer direct = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizer)
        .optPadding(false).optTruncation(true).optMaxLength(128).build()) {
      for (int i = 0; i < TEXTS.size(); i++) {
        IDS.put((long) i, direct.encode(TEXTS.get(i)).getIds());
      }
    }
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < TEXTS.size(); i++) {
      rows.add(RowFactory.create((long) i, TEXTS.get(i)));
    }
    rows.add(RowFactory.create(-1L, null));
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType).add("body", DataTypes.StringType))
        .repartition(2).createOrReplaceTempView("id_texts");
  }

  @AfterAll
  static void tearDown() {
    spark.catalog().dropTempView("id_texts");
    SparkInference.unregister(spark, MODEL);
  }

  @AfterEach
  void resetTextSettings() {
    for (String key : List.of("embeddingOutput", "pooling", "normalize")) {
      spark.conf().unset(PREFIX + key);
    }
  }

  @Test
  void defaultIsTheFirstRankThreeOutputMeanPooledAndNormalized() {
    Map<Long, float[]> embeddings = embed();
    for (Map.Entry<Long, long[]> text : IDS.entrySet()) {
      long[] ids = text.getValue();
      // Mean over the real tokens of (id, 1), then unit length.
      assertClose(embeddings.get(text.getKey()), unit(sum(ids) / ids.length, 1.0), text.getKey());
    }
  }

  @Test
  void clsPoolingTakesTheFirstToken() {
    spark.conf().set(PREFIX + "pooling", "cls");
    Map<Long, float[]> embeddings = embed();
    for (Map.Entry<Long, long[]> text : IDS.entrySet()) {
      assertThat(text.getValue()[0]).isEqualTo(101L);
      assertClose(embeddings.get(text.getKey()), unit(101.0, 1.0), text.getKey());
    }
  }

  @Test
  void chosenRankTwoOutputIsTakenAsIsAndNormalizedOnlyWhenAsked() {
    spark.conf().set(PREFIX + "embeddingOutput", "pooled");
    spark.conf().set(PREFIX + "normalize", "false");
    Map<Long, float[]> raw = embed();
    for (Map.Entry<Long, long[]> text : IDS.entrySet()) {
      long[] ids = text.getValue();
      // Integer sums below 2^24: exact in float.
      assertThat(raw.get(text.getKey())).containsExactly((float) sum(ids), ids.length);
    }
    spark.conf().unset(PREFIX + "normalize");
    Map<Long, float[]> normalized = embed();
    for (Map.Entry<Long, long[]> text : IDS.entrySet()) {
      long[] ids = text.getValue();
      assertClose(normalized.get(text.getKey()), unit(sum(ids), ids.length), text.getKey());
    }
  }

  @Test
  void unknownEmbeddingOutputFailsAtAnalysisListingTheOutputs() {
    spark.conf().set(PREFIX + "embeddingOutput", "last_hidden_state");
    assertThatThrownBy(() -> spark.sql("SELECT embed('" + MODEL + "', body) FROM id_texts"))
        .isInstanceOf(AnalysisException.class)
        .hasMessageContaining("Model '" + MODEL + "' has no output 'last_hidden_state' (" + PREFIX + "embeddingOutput)")
        .hasMessageContaining("pooled")
        .hasMessageContaining("tokens");
  }

  @Test
  void textMetricsCountTokensPaddingAndTokenizeTime() {
    // One partition, so that the percentage (an average over tasks) is this task's own.
    spark.conf().set(PREFIX + "tokenBudget", "100000");
    try {
      Dataset<Row> result = spark.table("id_texts").coalesce(1).selectExpr("id", "embed('" + MODEL + "', body)");
      assertThat(result.collectAsList()).hasSize(TEXTS.size() + 1);
      long tokens = IDS.values().stream().mapToLong(ids -> ids.length).sum();
      int longest = IDS.values().stream().mapToInt(ids -> ids.length).max().orElseThrow();
      assertThat(TestPredictSql.metric(result, "tokens")).isEqualTo(tokens);
      long padding = TestPredictSql.metric(result, "paddingTokens");
      // Batches of similar lengths: never more than one batch padding every text to the longest.
      assertThat(padding).isBetween(0L, IDS.size() * (long) longest - tokens);
      assertThat(TestPredictSql.metric(result, "paddingPercent")).isEqualTo(Math.round(100.0 * padding / (tokens + padding)));
      assertThat(TestPredictSql.metric(result, "nullRows")).isEqualTo(1);
      assertThat(TestPredictSql.metric(result, "numOutputRows")).isEqualTo(TEXTS.size() + 1);
      // Timing metrics: only that they were recorded (nanoseconds).
      assertThat(TestPredictSql.metric(result, "tokenizeTime")).isPositive();
      assertThat(TestPredictSql.metric(result, "modelTime")).isPositive();
    } finally {
      spark.conf().unset(PREFIX + "tokenBudget");
    }
  }

  private static Map<Long, float[]> embed() {
    Dataset<Row> result = spark.sql("SELECT id, embed('" + MODEL + "', body) FROM id_texts");
    Map<Long, float[]> embeddings = new HashMap<>();
    for (Row row : result.collectAsList()) {
      if (row.getLong(0) < 0) {
        assertThat(row.isNullAt(1)).as("null text gives null").isTrue();
        continue;
      }
      List<Float> values = row.getList(1);
      float[] embedding = new float[values.size()];
      for (int i = 0; i < embedding.length; i++) {
        embedding[i] = values.get(i);
      }
      embeddings.put(row.getLong(0), embedding);
    }
    assertThat(embeddings).hasSize(TEXTS.size());
    return embeddings;
  }

  private static double sum(long[] ids) {
    double total = 0;
    for (long id : ids) {
      total += id;
    }
    return total;
  }

  private static double[] unit(double first, double second) {
    double norm = Math.hypot(first, second);
    return new double[] {first / norm, second / norm};
  }

  private static void assertClose(float[] actual, double[] expected, long id) {
    assertThat(actual).as("embedding of text %d", id).hasSize(2);
    for (int i = 0; i < 2; i++) {
      // fp32 pooling and normalization of exact integer inputs: a few float roundings.
      assertThat((double) actual[i]).as("value %d of text %d", i, id).isCloseTo(expected[i], offset(1e-6));
    }
  }
}
