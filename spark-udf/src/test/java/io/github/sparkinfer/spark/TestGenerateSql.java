package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.spark.generate.DecoderLayout;
import io.github.sparkinfer.spark.generate.DecoderModels;
import io.github.sparkinfer.spark.ml.InferenceTransformer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
 * generate() from SQL, the DataFrame API and the ML stage on the GPT-2 export of
 * ../shared/models/decoders, against a greedy decode written in the test that runs the model without
 * its cache, and the tokenizer's own encode and decode (DJL, called here directly).
 */
class TestGenerateSql {
  /** Letters: GPT-2's tokenizer has 50,257 tokens, this model's vocabulary 1,000, and single letters are below it. */
  private static final String[] PROMPTS = {"a b c d e", "s t", "p m d l f c g h o w", null, "a", "o w"};

  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path model;
  private static Path tokenizerFile;
  private static OrtSession session;
  private static DecoderLayout layout;
  private static HuggingFaceTokenizer tokenizer;

  @BeforeAll
  static void setUp() throws Exception {
    model = DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    tokenizerFile = model.resolveSibling("tokenizer.json");
    spark = SparkTestSessions.shared();
    session = OrtEnvironment.getEnvironment().createSession(model.toString(), new OrtSession.SessionOptions());
    layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
    // The reference tokenizer keeps every token (DJL's default truncates at 512).
    tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile).optTruncation(false).build();
    spark.conf().set("spark.sparkinfer.model.gpt2.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.gpt2.tokenizer", tokenizerFile.toUri().toString());
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < PROMPTS.length; i++) {
      rows.add(RowFactory.create((long) i, PROMPTS[i]));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType, false)
        .add("prompt", DataTypes.StringType, true)).repartition(2).createOrReplaceTempView("prompts");
  }

  @AfterAll
  static void tearDown() throws Exception {
    SparkInference.unregister(spark, "gpt2");
    spark.conf().unset("spark.sparkinfer.model.gpt2.tokenizer");
    session.close();
    tokenizer.close();
  }

  @AfterEach
  void resetOptions() {
    for (String key : List.of("spark.sparkinfer.model.gpt2.generate.maxNewTokens", "spark.sparkinfer.generate.maxNewTokens",
        "spark.sparkinfer.generate.maxNewToken", "spark.sparkinfer.model.gpt2.onError")) {
      spark.conf().unset(key);
    }
  }

  private static int[] ids(String prompt) {
    return Arrays.stream(tokenizer.encode(prompt).getIds()).mapToInt(id -> (int) id).toArray();
  }

  private static String text(int[] tokens) {
    return tokenizer.decode(Arrays.stream(tokens).mapToLong(token -> token).toArray(), true);
  }

  private static int[] reference(String prompt, int maxNew) throws Exception {
    // No stop token is set: -1 never matches.
    return DecoderModels.referenceDecode(session, layout, ids(prompt), maxNew, -1);
  }

  private static List<Row> byId(String sql) {
    return spark.sql(sql + " ORDER BY id").collectAsList();
  }

  @Test
  void greedyEqualsTheReferenceForEveryRowInBatchesOfUnequalLengths() throws Exception {
    // Batches of 2 from prompts of 1 to 10 tokens: every batch pads some row.
    List<Row> rows = byId("SELECT id, generate('gpt2', prompt, map('maxNewTokens', '9', 'batchSize', '2')) AS g"
        + " FROM prompts");
    assertThat(rows).hasSize(PROMPTS.length);
    for (Row row : rows) {
      String prompt = PROMPTS[(int) row.getLong(0)];
      if (prompt == null) {
        assertThat(row.isNullAt(1)).as("a null prompt gives null").isTrue();
        continue;
      }
      int[] expected = reference(prompt, 9);
      Row generated = row.getStruct(1);
      assertThat(generated.getString(0)).as("text of '%s'", prompt).isEqualTo(text(expected));
      assertThat(generated.getInt(1)).isEqualTo(9);
      assertThat(generated.getString(2)).isEqualTo("length");
    }
    assertThat(spark.sql("SELECT generate('gpt2', prompt) FROM prompts").schema().fields()[0].dataType().simpleString())
        .isEqualTo("struct<text:string,tokens:int,finish_reason:string>");
  }

  @Test
  void theLoopInsideOnnxRuntimeGivesTheJavaLoopsRows() throws Exception {
    String query = "SELECT id, generate('gpt2', prompt, map('maxNewTokens', '12', 'batchSize', '2', 'stopTokenIds',"
        + " '%d', 'decodeLoop', '%s')) AS g FROM prompts";
    // A token the model generates for "s t": that row stops early, others run to the length limit.
    int generated = reference("s t", 12)[4];
    List<Row> java = byId(String.format(query, generated, "java"));
    assertThat(byId(String.format(query, generated, "graph"))).isEqualTo(java);
    assertThat(java.stream().filter(row -> !row.isNullAt(1)).map(row -> row.getStruct(1).getString(2)))
        .as("some rows stop, some run to the length limit").contains("stop", "length");
    // " b": the first prompt holds it, so its batch goes through the Java loop (the operator pads with its stop
    // token); the other batches run inside ONNX Runtime's GreedySearch.
    int inPrompt = ids("a b c d e")[1];
    assertThat(byId(String.format(query, inPrompt, "graph"))).isEqualTo(byId(String.format(query, inPrompt, "java")));
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('decodeLoop', 'graph', 'temperature',"
        + " '0.5')) FROM prompts")).hasMessageContaining("decodeLoop=graph").hasMessageContaining("greedy");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('decodeLoop', 'graph', 'stopStrings',"
        + " 'x')) FROM prompts")).hasMessageContaining("stop strings");
  }

  @Test
  void aModelPackagingOnnxRuntimesDecodeLoopRunsAsItIs() throws Exception {
    Path packaged = folder.resolve("packaged");
    java.nio.file.Files.createDirectories(packaged);
    io.github.sparkinfer.compression.OnnxModel decoder = io.github.sparkinfer.compression.OnnxModel.read(model);
    // What onnxruntime.transformers' convert_generation writes: the decoder inside one GreedySearch node.
    io.github.sparkinfer.compression.GenerationGraph.of("gpt2", decoder).greedySearch(98, 98)
        .writeTo(packaged.resolve("greedy.onnx"));
    int padB = ids("a b c d e")[1];
    io.github.sparkinfer.compression.GenerationGraph.of("gpt2", decoder).greedySearch(98, padB)
        .writeTo(packaged.resolve("greedy-pad-b.onnx"));
    for (String name : List.of("greedy", "greedy-pad-b")) {
      String key = name.replace('-', '_');
      spark.conf().set("spark.sparkinfer.model." + key + ".path", packaged.resolve(name + ".onnx").toUri().toString());
      spark.conf().set("spark.sparkinfer.model." + key + ".tokenizer", tokenizerFile.toUri().toString());
    }
    try {
      // Its eos (98) is the Java loop's stop token too, read from the genai_config.json beside the decoder.
      assertThat(byId("SELECT id, generate('greedy', prompt, map('maxNewTokens', '10', 'batchSize', '2')) AS g"
          + " FROM prompts")).isEqualTo(byId("SELECT id, generate('gpt2', prompt, map('maxNewTokens', '10',"
          + " 'batchSize', '2')) AS g FROM prompts"));
      assertThatThrownBy(() -> spark.sql("SELECT generate('greedy', prompt, map('temperature', '0.5')) FROM prompts"))
          .hasMessageContaining("packages ONNX Runtime's GreedySearch");
      assertThatThrownBy(() -> spark.sql("SELECT predict('greedy', prompt) FROM prompts"))
          .hasMessageContaining("generate('greedy', prompt)");
      // A prompt holding the operator's padding token would get wrong positions: a row error.
      Row refused = spark.sql("SELECT generate_with_error('greedy_pad_b', 'a b c d e') AS g").first().getStruct(0);
      assertThat(refused.getStruct(0).getString(2)).isEqualTo("error");
      assertThat(refused.getString(1)).contains("padding token of model 'greedy_pad_b'");
    } finally {
      for (String key : List.of("greedy", "greedy_pad_b")) {
        SparkInference.unregister(spark, key);
        spark.conf().unset("spark.sparkinfer.model." + key + ".tokenizer");
      }
    }
  }

  @Test
  void stopTokensAndStopStringsEndRowsWithStop() throws Exception {
    String prompt = "p m d l f c g h o w";
    int[] expected = reference(prompt, 8);
    int stopToken = expected[3];
    int firstAt = 0;
    while (expected[firstAt] != stopToken) {
      firstAt++;
    }
    Row stopped = spark.sql("SELECT generate('gpt2', '" + prompt + "', named_struct('maxNewTokens', 8, 'stopTokenIds', '"
        + stopToken + "')) AS g").first().getStruct(0);
    assertThat(stopped.getString(0)).isEqualTo(text(Arrays.copyOf(expected, firstAt)));
    assertThat(stopped.getInt(1)).isEqualTo(firstAt);
    assertThat(stopped.getString(2)).isEqualTo("stop");

    String whole = text(expected);
    String stop = whole.substring(whole.length() / 2, whole.length() / 2 + 2);
    assertThat(stop).isNotBlank();
    Row cut = spark.sql("SELECT generate('gpt2', '" + prompt + "', map('maxNewTokens', '8', 'stopStrings', '[\""
        + stop + "\", \"never appears\"]')) AS g").first().getStruct(0);
    assertThat(cut.getString(0)).isEqualTo(whole.substring(0, whole.indexOf(stop)));
    assertThat(cut.getString(2)).isEqualTo("stop");
    // Arrays in a named_struct: stop strings and stop token ids as Spark arrays.
    Row arrays = spark.sql("SELECT generate('gpt2', '" + prompt + "', named_struct('maxNewTokens', 8, 'stopStrings',"
        + " array('" + stop + "', 'never appears'), 'stopTokenIds', array(" + stopToken + ", 999))) AS g").first()
        .getStruct(0);
    assertThat(arrays.getString(0)).isEqualTo(text(Arrays.copyOf(expected, firstAt)).length() <= whole.indexOf(stop)
        ? text(Arrays.copyOf(expected, firstAt)) : whole.substring(0, whole.indexOf(stop)));
    assertThat(arrays.getString(2)).isEqualTo("stop");
  }

  @Test
  void optionsComeFromTheCallOverTheModelKeyOverTheSessionKey() {
    String query = "SELECT generate('gpt2', 'a b c') AS g";
    spark.conf().set("spark.sparkinfer.generate.maxNewTokens", "4");
    assertThat(spark.sql(query).first().getStruct(0).getInt(1)).isEqualTo(4);
    spark.conf().set("spark.sparkinfer.model.gpt2.generate.maxNewTokens", "3");
    assertThat(spark.sql(query).first().getStruct(0).getInt(1)).isEqualTo(3);
    assertThat(spark.sql("SELECT generate('gpt2', 'a b c', map('max_new_tokens', 5)) AS g").first().getStruct(0).getInt(1))
        .isEqualTo(5);

    String sampled = "SELECT generate('gpt2', prompt, map('maxNewTokens', 12, 'temperature', 0.9, 'seed', 7)).text"
        + " AS t, id FROM prompts";
    List<Row> first = byId(sampled);
    assertThat(byId(sampled)).as("the same seed gives the same text").isEqualTo(first);
    assertThat(byId(sampled.replace("'seed', 7", "'seed', 8"))).as("another seed, other texts").isNotEqualTo(first);
  }

  @Test
  void badCallsFailAtAnalysisNamingTheOptionAndTheFix() {
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('temprature', '0.5')) FROM prompts"))
        .hasMessageContaining("there is no option 'temprature' (did you mean temperature?)");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('temperature', '-1')) FROM prompts"))
        .hasMessageContaining("temperature=-1.0").hasMessageContaining("0 (greedy) to 100");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('promptTemplate', 'Q: A:')) FROM prompts"))
        .hasMessageContaining("has no {prompt} slot");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('stopTokenIds', '5,1000')) FROM prompts"))
        .hasMessageContaining("'1000'").hasMessageContaining("vocabulary has 1000 tokens");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('stopStrings', '[\"x\", 3]')) FROM prompts"))
        .hasMessageContaining("JSON array");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('stopStrings', '" + "x".repeat(257) + "'))"
        + " FROM prompts")).hasMessageContaining("at most 256 characters");
    assertThatThrownBy(() -> ModelValidation.builder("gpt2", "gpt2").generate("prompt").minExactMatch(1.5))
        .hasMessageContaining("from 0 to 1");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('maxContext', '8', 'maxNewTokens', '8'))"
        + " FROM prompts")).hasMessageContaining("leaves no room for a prompt");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('batchSize', '2.5')) FROM prompts"))
        .hasMessageContaining("must be a whole number");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt, map('numBeams', '2', 'temperature', '0.5'))"
        + " FROM prompts")).hasMessageContaining("does not sample");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', id) FROM prompts"))
        .hasMessageContaining("takes one string column of prompts");
    assertThatThrownBy(() -> spark.sql("SELECT predict('gpt2', id) FROM prompts"))
        .hasMessageContaining("generates text (a decoder with a key/value cache").hasMessageContaining("generate('gpt2', prompt)");
    spark.conf().set("spark.sparkinfer.generate.maxNewToken", "4");
    assertThatThrownBy(() -> spark.sql("SELECT generate('gpt2', prompt) FROM prompts"))
        .hasMessageContaining("Unknown generate() option 'maxNewToken'").hasMessageContaining("did you mean maxNewTokens?");
    spark.conf().unset("spark.sparkinfer.generate.maxNewToken");

    spark.conf().set("spark.sparkinfer.model.bare_gpt2.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.mlp_gen.path", TestModels.writeMlp(folder).toUri().toString());
    try {
      assertThatThrownBy(() -> spark.sql("SELECT generate('bare_gpt2', prompt) FROM prompts"))
          .hasMessageContaining("has no tokenizer").hasMessageContaining("spark.sparkinfer.model.bare_gpt2.tokenizer");
      assertThatThrownBy(() -> spark.sql("SELECT generate('mlp_gen', prompt) FROM prompts"))
          .hasMessageContaining("is not a decoder with a key/value cache");
    } finally {
      SparkInference.unregister(spark, "bare_gpt2");
      SparkInference.unregister(spark, "mlp_gen");
    }
  }

  @Test
  void promptsTooLongForTheContextAreRowErrorsOrTruncatedFromTheLeft() throws Exception {
    // 4 new tokens in a context of 7 leave 3 prompt tokens: "p m d l f c g h o w" (10 tokens) is too long.
    String options = "map('maxNewTokens', '4', 'maxContext', '7')";
    List<Row> reported = byId("SELECT id, generate_with_error('gpt2', prompt, " + options + ") AS g FROM prompts");
    Row longRow = reported.get(2).getStruct(1);
    assertThat(longRow.getStruct(0).isNullAt(0)).isTrue();
    assertThat(longRow.getStruct(0).getString(2)).isEqualTo("error");
    assertThat(longRow.getString(1)).contains("model 'gpt2'").contains("maxContext=7").contains("contextOverflow=truncate");
    Row shortRow = reported.get(1).getStruct(1);
    assertThat(shortRow.isNullAt(1)).isTrue();
    assertThat(shortRow.getStruct(0).getString(0)).isEqualTo(text(reference("s t", 4)));

    assertThatThrownBy(() -> byId("SELECT id, generate('gpt2', prompt, " + options + ") AS g FROM prompts"))
        .hasMessageContaining("maxContext=7").hasMessageContaining("of partition").hasMessageContaining("onError=null");

    // A prompt of 700 tokens, past the 512 a tokenizer library caps at by default: its last 296 are kept.
    StringBuilder letters = new StringBuilder("a");
    for (int i = 1; i < 700; i++) {
      letters.append(' ').append("abcdefghlmopstw".charAt((i * 7) % 15));
    }
    int[] longPrompt = ids(letters.toString());
    assertThat(longPrompt).hasSize(700);
    Row kept = spark.sql("SELECT generate('gpt2', '" + letters + "', map('maxNewTokens', '4', 'maxContext', '300',"
        + " 'contextOverflow', 'truncate')) AS g").first().getStruct(0);
    assertThat(kept.getString(0)).isEqualTo(text(DecoderModels.referenceDecode(session, layout,
        Arrays.copyOfRange(longPrompt, 700 - 296, 700), 4, -1)));

    List<Row> truncated = byId("SELECT id, generate('gpt2', prompt, map('maxNewTokens', '4', 'maxContext', '7',"
        + " 'contextOverflow', 'truncate')) AS g FROM prompts");
    int[] prompt = ids("p m d l f c g h o w");
    int[] lastThree = Arrays.copyOfRange(prompt, prompt.length - 3, prompt.length);
    assertThat(truncated.get(2).getStruct(1).getString(0))
        .isEqualTo(text(DecoderModels.referenceDecode(session, layout, lastThree, 4, -1)));
  }

  @Test
  void theExportersConfigBesideTheModelGivesTheDefaultStopTokensAndContext() throws Exception {
    Path copy = folder.resolve("exported");
    java.nio.file.Files.createDirectories(copy);
    java.nio.file.Files.copy(model, copy.resolve("past.onnx"));
    String prompt = "a b c d e";
    int[] free = DecoderModels.referenceDecode(session, layout, ids(prompt), 6, -1);
    // Hugging Face's config.json: its eos ids stop rows, its positions bound the context (genai_config.json absent).
    java.nio.file.Files.writeString(copy.resolve("config.json"), "{\"eos_token_id\": [" + free[2] + ", 999],"
        + " \"max_position_embeddings\": 12}");
    spark.conf().set("spark.sparkinfer.model.exported.path", copy.resolve("past.onnx").toUri().toString());
    spark.conf().set("spark.sparkinfer.model.exported.tokenizer", tokenizerFile.toUri().toString());
    try {
      Row stopped = spark.sql("SELECT generate('exported', '" + prompt + "', map('maxNewTokens', '6')) AS g").first()
          .getStruct(0);
      int firstAt = 0;
      while (free[firstAt] != free[2]) {
        firstAt++;
      }
      assertThat(stopped.getString(0)).isEqualTo(text(Arrays.copyOf(free, firstAt)));
      assertThat(stopped.getString(2)).isEqualTo("stop");
      // An empty stopTokenIds turns the exporter's off.
      Row free6 = spark.sql("SELECT generate('exported', '" + prompt + "', map('maxNewTokens', '6', 'stopTokenIds', ''))"
          + " AS g").first().getStruct(0);
      assertThat(free6.getString(0)).isEqualTo(text(free));
      // 7 prompt tokens + 6 new are more than the 12 positions.
      Row tooLong = spark.sql("SELECT generate_with_error('exported', 'a b c d e f g', map('maxNewTokens', '6')) AS g")
          .first().getStruct(0);
      assertThat(tooLong.getString(1)).contains("maxContext=12");
    } finally {
      SparkInference.unregister(spark, "exported");
      spark.conf().unset("spark.sparkinfer.model.exported.tokenizer");
    }
  }

  @Test
  void decodersAreValidatedByTheirGreedyTextsOnTheUsersPrompts() {
    Dataset<Row> prompts = spark.table("prompts");
    // Short texts keep the test quick; reset after each test.
    spark.conf().set("spark.sparkinfer.generate.maxNewTokens", "16");
    spark.conf().set("spark.sparkinfer.model.gpt2_int8.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.gpt2_int8.tokenizer", tokenizerFile.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.gpt2_int8.precision", "int8");
    // One scheme on every CPU: auto would follow the machine's instructions, and with them the texts.
    spark.conf().set("spark.sparkinfer.model.gpt2_int8.int8Scheme", "u8u8");
    // The same decoder with another template: texts that differ, so the figures are not all 1.
    spark.conf().set("spark.sparkinfer.model.gpt2_other.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.gpt2_other.tokenizer", tokenizerFile.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.gpt2_other.generate.promptTemplate", "z {prompt}");
    try {
      ModelValidation.Report int8 = ModelValidation.builder("gpt2", "gpt2_int8").generate("prompt")
          .minPrefixAgreement(0).build().validate(prompts);
      assertReportMatchesTexts(int8, "gpt2_int8");
      ModelValidation.Report other = ModelValidation.builder("gpt2", "gpt2_other").generate("prompt")
          .minPrefixAgreement(0).build().validate(prompts);
      assertReportMatchesTexts(other, "gpt2_other");
      assertThat(other.prefixAgreement()).isLessThan(1);
      assertThatThrownBy(() -> ModelValidation.builder("gpt2", "gpt2_other").generate("prompt").minExactMatch(1)
          .build().validate(prompts)).hasMessageContaining("does not generate close enough to 'gpt2'")
          .hasMessageContaining("equal texts");
    } finally {
      SparkInference.unregister(spark, "gpt2_int8");
      SparkInference.unregister(spark, "gpt2_other");
      for (String key : List.of("gpt2_int8.tokenizer", "gpt2_int8.precision", "gpt2_int8.int8Scheme", "gpt2_other.tokenizer",
          "gpt2_other.generate.promptTemplate")) {
        spark.conf().unset("spark.sparkinfer.model." + key);
      }
    }
  }

  /** The report's figures, computed here from both models' texts row by row. */
  private static void assertReportMatchesTexts(ModelValidation.Report report, String compressed) {
    List<Row> texts = spark.sql("SELECT generate('gpt2', prompt).text, generate('" + compressed + "', prompt).text"
        + " FROM prompts WHERE prompt IS NOT NULL").collectAsList();
    double equal = 0;
    double agreement = 0;
    for (Row row : texts) {
      String a = row.getString(0);
      String b = row.getString(1);
      int common = 0;
      while (common < a.length() && common < b.length() && a.regionMatches(0, b, 0, common + 1)) {
        common++;
      }
      equal += a.equals(b) ? 1 : 0;
      agreement += Math.max(a.length(), b.length()) == 0 ? 1 : (double) common / Math.max(a.length(), b.length());
    }
    assertThat(report.rows()).isEqualTo(texts.size());
    assertThat(report.exactMatch()).isEqualTo(equal / texts.size());
    assertThat(report.prefixAgreement()).isCloseTo(agreement / texts.size(), org.assertj.core.data.Offset.offset(1e-12));
  }

  @Test
  void theDataFrameApiAndTheMlStageCallTheSameFunction() throws Exception {
    Dataset<Row> prompts = spark.table("prompts");
    List<Row> sql = byId("SELECT id, generate('gpt2', prompt, map('maxNewTokens', '5')).text AS text FROM prompts");
    List<Row> api = Inference.generate("gpt2").input("prompt").generateOption("max_new_tokens", "5").transform(prompts)
        .selectExpr("id", "generated.text AS text").orderBy("id").collectAsList();
    assertThat(api).isEqualTo(sql);
    // Beams reach the decoder from SQL: three beams on a row, against the same search with the model file alone.
    Row beams = spark.sql("SELECT generate('gpt2', 'a b c d e', map('maxNewTokens', '6', 'numBeams', '3')) AS g")
        .first().getStruct(0);
    assertThat(beams.getInt(1)).isEqualTo(6);
    assertThat(beams.getString(0)).isEqualTo(text(io.github.sparkinfer.spark.generate.DecoderModels.beamSearch(session,
        layout, ids("a b c d e"), 6, 3)));
    InferenceTransformer stage = new InferenceTransformer().setModelName("gpt2").setFunction("generate")
        .setInputCols(new String[] {"prompt"}).setOutputCol("out").setGenerateOptions("maxNewTokens=5");
    List<Row> ml = stage.transform(prompts).selectExpr("id", "out.text AS text").orderBy("id").collectAsList();
    assertThat(ml).isEqualTo(sql);
    assertThat(sql.get(0).getString(1)).isEqualTo(text(reference(PROMPTS[0], 5)));
    assertThatThrownBy(() -> Inference.generate("gpt2").generateOption("temprature", "1"))
        .hasMessageContaining("no generate() option 'temprature'");

    String described = spark.sql("DESCRIBE FUNCTION EXTENDED generate").collectAsList().toString();
    assertThat(described).contains("struct<text, tokens, finish_reason>").contains("maxNewTokens");
  }
}
