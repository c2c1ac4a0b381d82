package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.spark.generate.DecoderLayout;
import io.github.sparkinfer.spark.generate.DecoderModels;
import io.github.sparkinfer.spark.generate.GeneratedDecoders;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * generate() from SQL on decoders and a WordLevel tokenizer.json that the test writes itself
 * (GeneratedDecoders), so that the SQL path is tested without ../shared/models/decoders: every row's
 * text equals the tokenizer's decoding of a greedy decode written in the test that runs the model
 * without its cache, in batches of prompts of unequal lengths (left padding). Two layouts: GPT-2's
 * (int32 inputs, past_N) and Optimum's without position_ids (int64, past_key_values.N.key|value).
 */
class TestGenerateSqlOnGeneratedDecoder {
  private static final List<GeneratedDecoders.Layout> LAYOUTS = List.of(GeneratedDecoders.Layout.GPT2,
      GeneratedDecoders.Layout.OPTIMUM_WITHOUT_POSITIONS);
  /**
   * Words of the generated vocabulary, 1 to 7 tokens, in one partition: sorted by length into batches
   * of 3 (1, 2, 2 and 5, 7 tokens), both batches pad their shorter rows.
   */
  private static final String[] PROMPTS = {"the cat", "a red dog bird theo", "blue", "green cat dog the a red blue",
      null, "bird ao"};

  @TempDir static Path folder;

  private static SparkSession spark;
  private static final Map<GeneratedDecoders.Layout, OrtSession> SESSIONS = new EnumMap<>(GeneratedDecoders.Layout.class);
  private static HuggingFaceTokenizer tokenizer;

  @BeforeAll
  static void setUp() throws Exception {
    Path tokenizerFile = GeneratedDecoders.tokenizer(folder);
    spark = SparkTestSessions.shared();
    tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile)
        .optMaxLength(GeneratedDecoders.MAX_POSITIONS).build();
    for (GeneratedDecoders.Layout layout : LAYOUTS) {
      Path model = GeneratedDecoders.write(layout, folder.resolve(layout.name()), 30);
      SESSIONS.put(layout, OrtEnvironment.getEnvironment().createSession(model.toString(),
          new OrtSession.SessionOptions()));
      spark.conf().set("spark.sparkinfer.model." + name(layout) + ".path", model.toUri().toString());
      spark.conf().set("spark.sparkinfer.model." + name(layout) + ".tokenizer", tokenizerFile.toUri().toString());
    }
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < PROMPTS.length; i++) {
      rows.add(RowFactory.create((long) i, PROMPTS[i]));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType, false)
        .add("prompt", DataTypes.StringType, true)).coalesce(1).createOrReplaceTempView("generated_prompts");
  }

  @AfterAll
  static void tearDown() throws Exception {
    for (GeneratedDecoders.Layout layout : LAYOUTS) {
      SparkInference.unregister(spark, name(layout));
      spark.conf().unset("spark.sparkinfer.model." + name(layout) + ".tokenizer");
    }
    spark.catalog().dropTempView("generated_prompts");
    for (OrtSession session : SESSIONS.values()) {
      session.close();
    }
    tokenizer.close();
  }

  private static String name(GeneratedDecoders.Layout layout) {
    return "generated_" + layout.name().toLowerCase();
  }

  @ParameterizedTest
  @EnumSource(value = GeneratedDecoders.Layout.class, names = {"GPT2", "OPTIMUM_WITHOUT_POSITIONS"})
  void greedyTextEqualsTheReferenceDecodeForEveryRow(GeneratedDecoders.Layout kind) throws Exception {
    int maxNew = 8;
    OrtSession session = SESSIONS.get(kind);
    DecoderLayout layout = DecoderLayout.of(name(kind), DecoderModels.signature(session));
    List<Row> rows = spark.sql("SELECT id, generate('" + name(kind) + "', prompt, map('maxNewTokens', '" + maxNew
        + "', 'batchSize', '3')) AS g FROM generated_prompts ORDER BY id").collectAsList();
    assertThat(rows).hasSize(PROMPTS.length);
    for (Row row : rows) {
      String prompt = PROMPTS[(int) row.getLong(0)];
      if (prompt == null) {
        assertThat(row.isNullAt(1)).as("a null prompt gives null").isTrue();
        continue;
      }
      int[] ids = Arrays.stream(tokenizer.encode(prompt).getIds()).mapToInt(Math::toIntExact).toArray();
      assertThat(ids).as("'%s' is in the vocabulary", prompt).doesNotContain(0).hasSize(prompt.split(" ").length);
      // No stop token is set: -1 never matches.
      int[] expected = DecoderModels.referenceDecode(session, layout, ids, maxNew, -1);
      Row generated = row.getStruct(1);
      String text = tokenizer.decode(Arrays.stream(expected).mapToLong(token -> token).toArray(), true);
      assertThat(text).as("reference text of '%s'", prompt).isNotBlank();
      assertThat(generated.getString(0)).as("text of '%s'", prompt).isEqualTo(text);
      assertThat(generated.getInt(1)).isEqualTo(maxNew);
      assertThat(generated.getString(2)).isEqualTo("length");
    }
  }
}
