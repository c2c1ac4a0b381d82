package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2q.AllMiniLmL6V2QuantizedEmbeddingModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
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

/**
 * embed() on real all-MiniLM-L6-v2 (fp32 and int8, langchain4j's Maven artifacts) against
 * langchain4j's own embedding model classes for the same files: an independent tokenizer call,
 * forward pass, pooling and normalization per text.
 */
class TestEmbed {
  @TempDir static Path folder;

  private static SparkSession spark;
  private static List<String> texts;
  private static Dataset<Row> documents;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
    register("minilm", "all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json");
    register("minilm_q", "all-minilm-l6-v2-q.onnx", "all-minilm-l6-v2-q-tokenizer.json");
    texts = corpus();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      rows.add(RowFactory.create((long) i, texts.get(i)));
    }
    rows.add(RowFactory.create(-1L, null));
    documents = spark.createDataFrame(rows, new StructType()
        .add("id", DataTypes.LongType, false).add("body", DataTypes.StringType, true)).repartition(3);
    documents.createOrReplaceTempView("docs");
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "minilm");
    SparkInference.unregister(spark, "minilm_q");
    spark.conf().unset("spark.sparkinfer.model.minilm.tokenizer");
    spark.conf().unset("spark.sparkinfer.model.minilm_q.tokenizer");
    spark.conf().unset("spark.sparkinfer.sortWindowRows");
  }

  private static void register(String name, String model, String tokenizer) {
    spark.conf().set("spark.sparkinfer.model." + name + ".path",
        TestModels.copyResource(folder, model).toUri().toString());
    spark.conf().set("spark.sparkinfer.model." + name + ".tokenizer",
        TestModels.copyResource(folder, tokenizer).toUri().toString());
  }

  @Test
  void fp32MatchesLangchain4jOnVariedTexts() {
    assertMatchesLangchain4j("minilm", new AllMiniLmL6V2EmbeddingModel());
  }

  @Test
  void int8MatchesLangchain4jOnVariedTexts() {
    assertMatchesLangchain4j("minilm_q", new AllMiniLmL6V2QuantizedEmbeddingModel());
  }

  private static void assertMatchesLangchain4j(String model, EmbeddingModel oracle) {
    // Small windows and budgets: many windows, prefetch and length batches are exercised.
    spark.conf().set("spark.sparkinfer.sortWindowRows", "40");
    spark.conf().set("spark.sparkinfer.model." + model + ".tokenBudget", "1024");
    Dataset<Row> result = spark.sql("SELECT id, embed('" + model + "', body) AS embedding FROM docs");
    assertThat(result.schema().apply("embedding").dataType())
        .isEqualTo(DataTypes.createArrayType(DataTypes.FloatType, false));
    List<Row> rows = result.collectAsList();
    assertThat(rows).hasSize(texts.size() + 1);
    float[] blank = null;
    double worst = 1;
    int compared = 0;
    for (Row row : rows) {
      long id = row.getLong(0);
      if (id < 0) {
        assertThat(row.isNullAt(1)).as("null text gives null").isTrue();
        continue;
      }
      float[] actual = floats(row.getList(1));
      assertThat(actual).hasSize(384);
      assertThat(norm(actual)).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-5));
      String text = texts.get((int) id);
      if (text.isBlank()) {
        // langchain4j refuses blank text; ours is the embedding of [CLS] [SEP], the same for all.
        if (blank == null) {
          blank = actual;
        }
        assertThat(cosine(actual, blank)).isGreaterThan(0.99999);
        continue;
      }
      float[] expected = oracle.embed(text).content().vector();
      double cosine = cosine(actual, expected);
      worst = Math.min(worst, cosine);
      assertThat(cosine).as("cosine for text %d '%s'", id, abbreviate(text)).isGreaterThanOrEqualTo(0.9999);
      compared++;
    }
    assertThat(compared).isGreaterThanOrEqualTo(200);
    assertThat(blank).as("blank texts were embedded").isNotNull();
    assertThat(TestPredictSql.metric(result, "batches")).isGreaterThan(5);
  }

  @Test
  void blankTextIsTheEmbeddingOfClsSep() throws Exception {
    Path model = TestModels.copyResource(folder, "all-minilm-l6-v2.onnx");
    float[][][] hidden = TestModels.runMiniLm(model, new long[][] {{101, 102}}, new long[][] {{1, 1}});
    float[] expected = new float[384];
    for (int k = 0; k < 384; k++) {
      expected[k] = (hidden[0][0][k] + hidden[0][1][k]) / 2;
    }
    List<Row> rows = spark.sql("SELECT embed('minilm', ''), embed('minilm', ' \\t\\n ')").collectAsList();
    assertThat(cosine(floats(rows.get(0).getList(0)), expected)).isGreaterThan(0.99999);
    assertThat(cosine(floats(rows.get(0).getList(1)), expected)).isGreaterThan(0.99999);
  }

  @Test
  void rowsKeepTheirOrderAndLengthBatchingCutsPadding() throws Exception {
    spark.conf().set("spark.sparkinfer.sortWindowRows", "256");
    spark.conf().set("spark.sparkinfer.model.minilm.tokenBudget", "2048");
    Dataset<Row> ordered = spark.sql("SELECT id, embed('minilm', body) AS e FROM"
        + " (SELECT /*+ COALESCE(1) */ * FROM docs WHERE id >= 0 ORDER BY id DESC)");
    List<Row> rows = ordered.collectAsList();
    List<Long> ids = new ArrayList<>();
    rows.forEach(row -> ids.add(row.getLong(0)));
    List<Long> expectedOrder = new ArrayList<>(ids);
    expectedOrder.sort(Collections.reverseOrder());
    assertThat(ids).as("ORDER BY below embed() still holds").isEqualTo(expectedOrder).hasSize(texts.size());
    String plan = ordered.queryExecution().executedPlan().toString();
    assertThat(plan).contains("BatchPredict embed(minilm, ");

    // Independent token counts: the tokenizer itself, truncating at the tokenizer.json's 128.
    int[] lengths = new int[texts.size()];
    try (ai.djl.huggingface.tokenizers.HuggingFaceTokenizer tokenizer =
        ai.djl.huggingface.tokenizers.HuggingFaceTokenizer.builder()
            .optTokenizerPath(TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json"))
            .optPadding(false).optTruncation(true).optMaxLength(128).build()) {
      for (int i = 0; i < lengths.length; i++) {
        lengths[i] = tokenizer.encode(texts.get(texts.size() - 1 - i)).getIds().length;
      }
    }
    long tokens = TestPredictSql.metric(ordered, "tokens");
    long padding = TestPredictSql.metric(ordered, "paddingTokens");
    long batches = TestPredictSql.metric(ordered, "batches");
    assertThat(tokens).isEqualTo(java.util.Arrays.stream(lengths).asLongStream().sum());
    // The same number of batches in arrival order, as a hand-written loop would form them.
    int rowsPerBatch = (int) Math.ceil((double) lengths.length / batches);
    long fixedPadding = 0;
    for (int start = 0; start < lengths.length; start += rowsPerBatch) {
      int end = Math.min(lengths.length, start + rowsPerBatch);
      int longest = java.util.Arrays.stream(lengths, start, end).max().orElseThrow();
      for (int i = start; i < end; i++) {
        fixedPadding += longest - lengths[i];
      }
    }
    // Measured 714 padding tokens against 10,010 for the same number of batches in arrival order
    // (texts of 3 to 60 words, windows of 256): sorting must remove at least nine tenths of it.
    assertThat(padding).as("padding of length-sorted batches vs arrival-order batches").isLessThan(fixedPadding / 10);
  }

  /** Unset, the token budget is the CPU's (256): small batches, which ran faster there. */
  @Test
  void theDefaultTokenBudgetOnTheCpuMakesSmallBatches() {
    spark.conf().unset("spark.sparkinfer.model.minilm.tokenBudget");
    spark.conf().unset("spark.sparkinfer.tokenBudget");
    spark.conf().set("spark.sparkinfer.sortWindowRows", "256");
    String query = "SELECT id, embed('minilm', body) AS e FROM (SELECT /*+ COALESCE(1) */ * FROM docs WHERE id >= 0)";
    Dataset<Row> byDefault = spark.sql(query);
    byDefault.collectAsList();
    long padded = TestPredictSql.metric(byDefault, "tokens") + TestPredictSql.metric(byDefault, "paddingTokens");
    long batches = TestPredictSql.metric(byDefault, "batches");
    // No text is over 128 tokens, so every batch holds at most 256 padded tokens.
    assertThat(padded).as("padded tokens of %d batches", batches).isLessThanOrEqualTo(256 * batches);

    spark.conf().set("spark.sparkinfer.tokenBudget", "8192");
    try {
      Dataset<Row> large = spark.sql(query);
      large.collectAsList();
      // Fewer, larger batches (rows of similar length only: the padding rule still cuts them).
      assertThat(TestPredictSql.metric(large, "batches")).as("batches under a budget of 8192")
          .isLessThan(batches);
    } finally {
      spark.conf().unset("spark.sparkinfer.tokenBudget");
    }
  }

  @Test
  void dataFrameApiAndErrors() {
    Dataset<Row> embedded = Inference.embed("minilm").input("body").transform(documents.filter("id = 3"));
    List<Row> rows = embedded.select("id", "embedding").collectAsList();
    float[] expected = new AllMiniLmL6V2EmbeddingModel().embed(texts.get(3)).content().vector();
    assertThat(cosine(floats(rows.get(0).getList(1)), expected)).isGreaterThanOrEqualTo(0.9999);

    Path mlp = TestModels.writeMlp(folder);
    spark.conf().set("spark.sparkinfer.model.plain.path", mlp.toUri().toString());
    try {
      assertThatThrownBy(() -> spark.sql("SELECT embed('plain', body) FROM docs"))
          .hasMessageContaining("Model 'plain' has no tokenizer")
          .hasMessageContaining("SET spark.sparkinfer.model.plain.tokenizer=");
      assertThatThrownBy(() -> spark.sql("SELECT embed('minilm', id) FROM docs"))
          .hasMessageContaining("embed('minilm', text) takes one string column, but got (bigint)");
      spark.conf().set("spark.sparkinfer.model.plain.tokenizer", "file:/nowhere/tokenizer.json");
      assertThatThrownBy(() -> spark.sql("SELECT embed('plain', body) FROM docs"))
          .hasMessageContaining("has a tokenizer (spark.sparkinfer.model.plain.tokenizer) but its input 'features'");
    } finally {
      SparkInference.unregister(spark, "plain");
      spark.conf().unset("spark.sparkinfer.model.plain.tokenizer");
    }
    spark.conf().set("spark.sparkinfer.model.minilm.pooling", "max");
    try {
      assertThatThrownBy(() -> spark.sql("SELECT embed('minilm', body) FROM docs"))
          .hasMessageContaining("Invalid value 'max' for spark.sparkinfer.model.minilm.pooling");
    } finally {
      spark.conf().unset("spark.sparkinfer.model.minilm.pooling");
    }
  }

  /**
   * A dynamically quantized model picks one activation scale per run: embed() runs it one text per
   * call, so a text's vector is the same however the rows are partitioned and batched.
   */
  @Test
  void dynamicallyQuantizedEmbedRunsOneTextPerCallAndIgnoresPartitioning() {
    Dataset<Row> one = spark.sql("SELECT id, embed('minilm_q', body) AS e FROM docs WHERE id >= 0 AND id < 60")
        .repartition(1);
    Dataset<Row> spread = documents.filter("id >= 0 AND id < 60").repartition(5, documents.col("id"))
        .selectExpr("id", "embed('minilm_q', body) AS e");
    java.util.Map<Long, List<Float>> single = new java.util.HashMap<>();
    one.collectAsList().forEach(row -> single.put(row.getLong(0), row.getList(1)));
    List<Row> rows = spread.collectAsList();
    assertThat(rows).hasSize(60);
    for (Row row : rows) {
      assertThat(row.<Float>getList(1)).as("text %d", row.getLong(0)).isEqualTo(single.get(row.getLong(0)));
    }
    assertThat(TestPredictSql.metric(spread, "batches")).as("one model call per text").isEqualTo(60);
  }

  /**
   * pooling=cls, normalize=false and a maxLength below the tokenizer's own truncation, against
   * DJL's tokenizer and ONNX Runtime called directly: the vector is the first token's state of the
   * first 8 tokens, as it comes out of the model.
   */
  @Test
  void clsPoolingWithoutNormalizingAtAShorterMaxLength() throws Exception {
    register("minilm_cls", "all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json");
    spark.conf().set("spark.sparkinfer.model.minilm_cls.pooling", "cls");
    spark.conf().set("spark.sparkinfer.model.minilm_cls.normalize", "false");
    spark.conf().set("spark.sparkinfer.model.minilm_cls.maxLength", "8");
    String text = "spark executors run the model on batches of sorted texts, one session per executor";
    try (ai.djl.huggingface.tokenizers.HuggingFaceTokenizer tokenizer =
        ai.djl.huggingface.tokenizers.HuggingFaceTokenizer.builder()
            .optTokenizerPath(TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json"))
            .optPadding(false).optTruncation(true).optMaxLength(8).build()) {
      long[] ids = tokenizer.encode(text).getIds();
      assertThat(ids).hasSize(8);
      long[] mask = new long[8];
      java.util.Arrays.fill(mask, 1);
      float[][][] hidden = TestModels.runMiniLm(TestModels.copyResource(folder, "all-minilm-l6-v2.onnx"),
          new long[][] {ids}, new long[][] {mask});
      float[] actual = floats(spark.sql("SELECT embed('minilm_cls', '" + text + "') AS e").first().getList(0));
      assertThat(actual).hasSize(384);
      // The same inputs through the same fp32 kernels: agreement to float rounding.
      for (int k = 0; k < 384; k++) {
        assertThat(actual[k]).as("dimension %d", k).isCloseTo(hidden[0][0][k], org.assertj.core.data.Offset.offset(1e-6f));
      }
      assertThat(norm(actual)).as("not normalized").isGreaterThan(1.5);
    } finally {
      SparkInference.unregister(spark, "minilm_cls");
    }
  }

  @Test
  void predictAndTokenizeOnATextModel() throws Exception {
    String text = texts.get(7);
    List<Row> tokenized = spark.sql("SELECT tokenize('minilm', '" + text + "') AS t").collectAsList();
    Row inputs = tokenized.get(0).getStruct(0);
    List<Long> ids = inputs.getList(0);
    List<Long> mask = inputs.getList(1);
    assertThat(ids).hasSize(128);
    int length = (int) mask.stream().filter(value -> value == 1L).count();
    assertThat(ids.get(0)).isEqualTo(101L);
    assertThat(ids.get(length - 1)).isEqualTo(102L);
    assertThat(ids.subList(length, 128)).containsOnly(0L);
    // The ids against DJL's tokenizer called directly on the same tokenizer.json: the reference
    // below then starts from independent ids.
    try (ai.djl.huggingface.tokenizers.HuggingFaceTokenizer tokenizer =
        ai.djl.huggingface.tokenizers.HuggingFaceTokenizer.builder()
            .optTokenizerPath(TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json"))
            .optPadding(false).optTruncation(true).optMaxLength(128).build()) {
      long[] direct = tokenizer.encode(text).getIds();
      assertThat(ids.subList(0, length)).containsExactly(java.util.Arrays.stream(direct).boxed().toArray(Long[]::new));
    }

    List<Row> predicted = spark.sql("SELECT predict('minilm', body) AS hidden FROM docs WHERE id = 7").collectAsList();
    List<scala.collection.Seq<Float>> hidden = predicted.get(0).getList(0);
    assertThat(hidden).hasSize(128);
    long[] paddedIds = new long[128];
    long[] paddedMask = new long[128];
    for (int i = 0; i < 128; i++) {
      paddedIds[i] = ids.get(i);
      paddedMask[i] = mask.get(i);
    }
    float[][][] reference = TestModels.runMiniLm(
        TestModels.copyResource(folder, "all-minilm-l6-v2.onnx"), new long[][] {paddedIds}, new long[][] {paddedMask});
    for (int token = 0; token < length; token++) {
      List<Float> state = JavaCollections.asJava(hidden.get(token));
      for (int k = 0; k < 384; k++) {
        assertThat(Math.abs(state.get(k) - reference[0][token][k])).isLessThanOrEqualTo(1e-5f);
      }
    }
    // The DataFrame API tokenizes a string column the same way.
    Dataset<Row> viaApi = Inference.model("minilm").input("body").as("hidden").transform(documents.filter("id = 7"));
    List<scala.collection.Seq<Float>> apiHidden = viaApi.select("hidden").first().getList(0);
    assertThat(JavaCollections.asJava(apiHidden.get(0)))
        .isEqualTo(JavaCollections.asJava(hidden.get(0)));
  }

  /** 200 generated sentences of 3 to 60 words, and the cases that break tokenizers. */
  static List<String> corpus() {
    return corpus(200);
  }

  /** {@code generated} sentences of 3 to 60 words, then the cases that break tokenizers. */
  static List<String> corpus(int generated) {
    String[] words = ("the a of to and in is it that for on with as was be by this are at from or an"
        + " have not they which one you were her all she there would their we him been has when who will"
        + " data spark model vector cluster executor partition batch token inference embedding quantized"
        + " tokenization unbelievably photosynthesis electroencephalography antidisestablishmentarianism"
        + " river mountain coffee morning quickly brown fox jumps lazy dog whisper thunder ancient library")
        .split(" ");
    SplittableRandom random = new SplittableRandom(2026);
    List<String> corpus = new ArrayList<>();
    for (int i = 0; i < generated; i++) {
      int length = 3 + (int) (57 * Math.pow(random.nextDouble(), 2));
      StringBuilder sentence = new StringBuilder();
      for (int w = 0; w < length; w++) {
        String word = words[random.nextInt(words.length)];
        sentence.append(w == 0 ? Character.toUpperCase(word.charAt(0)) + word.substring(1) : word);
        sentence.append(w + 1 < length ? (random.nextInt(12) == 0 ? ", " : " ") : ".");
      }
      corpus.add(sentence.toString());
    }
    corpus.add("");
    corpus.add("   ");
    corpus.add(" \t\n ");
    corpus.add("Café naïve résumé, déjà vu à la carte.");
    corpus.add("日本語のテキストを埋め込みます。");
    corpus.add("中文句子用于测试分词器。");
    corpus.add("한국어 문장도 시험합니다.");
    corpus.add("Emoji 👍🎉🚀 mixed with text 🤖.");
    corpus.add("Ünïcödé ÀÉÎÕÜ ßøåæ Ωμέγα Русский текст.");
    corpus.add("!!! ??? ... ;;; ---");
    corpus.add("3.14159 2.71828 1.41421 42 1e-10 0xDEADBEEF");
    corpus.add("https://example.com/path?query=value&other=1#fragment");
    corpus.add("UPPER CASE lower case MiXeD cAsE");
    corpus.add(String.join(" ", Collections.nCopies(300, "longer than the model maximum")));
    return corpus;
  }

  static float[] floats(List<Float> values) {
    float[] result = new float[values.size()];
    for (int i = 0; i < result.length; i++) {
      result[i] = values.get(i);
    }
    return result;
  }

  static double cosine(float[] left, float[] right) {
    double dot = 0;
    for (int i = 0; i < left.length; i++) {
      dot += (double) left[i] * right[i];
    }
    return dot / (norm(left) * norm(right));
  }

  private static double norm(float[] values) {
    double sum = 0;
    for (float value : values) {
      sum += (double) value * value;
    }
    return Math.sqrt(sum);
  }

  private static String abbreviate(String text) {
    return text.length() > 60 ? text.substring(0, 60) + "..." : text;
  }
}
