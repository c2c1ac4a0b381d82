package io.github.sparkinfer.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.cluster.StandaloneCluster;
import io.github.sparkinfer.spark.generate.DecoderLayout;
import io.github.sparkinfer.spark.generate.DecoderModels;
import io.github.sparkinfer.spark.reference.MiniLmReference;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runtime jar as users deploy it: Spark's own spark-submit against a standalone cluster whose
 * SPARK_HOME holds Spark only, with nothing of sparkinfer but {@code --jars
 * sparkinfer-spark-runtime-<line>_2.13.jar} and {@code spark.sql.extensions}, running a SQL file of
 * model_info, predict, embed, tokenize, compare_outputs and generate; every value checked here against
 * an independent reference (the MLP's Java forward pass, DJL's tokenizer and ONNX Runtime called
 * directly, cosines computed by hand, a greedy decode without the key/value cache). Then the example job's jar, submitted with --class as the
 * README shows. Runs after packaging (failsafe), on the jars the build made.
 */
@Timeout(value = 8, unit = TimeUnit.MINUTES)
class TestRuntimeJarSparkSubmit {
  private static final Duration APP_TIMEOUT = Duration.ofMinutes(4);
  private static final int POINTS = 1000;
  private static final List<String> TEXTS = List.of(
      "Spark runs the model in the executors, batch after batch.", "", "a quick brown fox",
      "Numbers 12345 and symbols #$% tokenize into several pieces");
  /** Single letters: the tiny GPT-2's vocabulary (1,000) is smaller than its tokenizer's, and these fall inside it. */
  private static final List<String> PROMPTS = List.of("a b c d e", "s t", "o w");
  private static final int NEW_TOKENS = 6;

  @TempDir Path folder;

  @Test
  void sqlFileWithOnlyTheRuntimeJarOnJars() throws Exception {
    Path runtimeJar = runtimeJar();
    MultilayerPerceptronModel mlp = MultilayerPerceptronModel.builder().layerSizes(16, 32, 4).seed(7)
        .inputName("features").outputName("scores").build();
    Path mlpFile = folder.resolve("mlp.onnx");
    mlp.writeTo(mlpFile);
    Path miniLm = copyResource("all-minilm-l6-v2.onnx");
    Path tokenizer = copyResource("all-minilm-l6-v2-tokenizer.json");
    StringBuilder docs = new StringBuilder();
    for (int i = 0; i < TEXTS.size(); i++) {
      docs.append(i == 0 ? "" : ", ").append("(").append(i).append(", '").append(TEXTS.get(i)).append("')");
    }
    // The tiny GPT-2 of ../shared/models/decoders; where that folder is missing, the rest runs and the test ends skipped.
    Path decoder = sharedDecoder();
    StringBuilder prompts = new StringBuilder();
    for (int i = 0; i < PROMPTS.size(); i++) {
      prompts.append(i == 0 ? "" : ", ").append("(").append(i).append(", '").append(PROMPTS.get(i)).append("')");
    }
    List<String> generate = decoder == null ? List.of() : List.of(
        "SET spark.sparkinfer.model.gpt2.path=" + decoder.toUri() + ";",
        "SET spark.sparkinfer.model.gpt2.tokenizer=" + decoder.resolveSibling("tokenizer.json").toUri() + ";",
        "SELECT id, generate('gpt2', prompt, map('maxNewTokens', '" + NEW_TOKENS + "')) AS g FROM VALUES " + prompts
            + " AS t(id, prompt);");
    Path sql = folder.resolve("inference.sql");
    Files.writeString(sql, String.join("\n",
        "SET spark.sparkinfer.model.mlp.path=" + mlpFile.toUri() + ";",
        "SET spark.sparkinfer.model.minilm.path=" + miniLm.toUri() + ";",
        "SET spark.sparkinfer.model.minilm.tokenizer=" + tokenizer.toUri() + ";",
        "CREATE OR REPLACE TEMP VIEW points AS SELECT id, transform(sequence(0, 15),"
            + " i -> CAST(sin(id * 16 + i) AS FLOAT)) AS features FROM range(0, " + POINTS + ", 1, 4);",
        "CREATE OR REPLACE TEMP VIEW docs AS SELECT * FROM VALUES " + docs + " AS t(id, body);",
        "SELECT kind, position, name, element_type, shape FROM model_info('mlp');",
        "SELECT id, predict('mlp', features) AS scores FROM points;",
        "SELECT id, embed('minilm', body) AS embedding FROM docs;",
        "SELECT id, tokenize('minilm', body).input_ids AS ids FROM docs;",
        "SELECT id, compare_outputs(predict('mlp', features), predict('mlp', transform(features, x -> x * 2))) AS c"
            + " FROM points WHERE id < 20;",
        String.join("\n", generate),
        ""));

    Path output = folder.resolve("results.txt");
    try (StandaloneCluster cluster = StandaloneCluster.builder("runtime-jar").worker(2, "2g").sparkJarsOnly()
        .start()) {
      assertThat(Files.list(cluster.sparkHome().resolve("jars")).map(jar -> jar.getFileName().toString()))
          .as("SPARK_HOME/jars: Spark only").noneMatch(jar -> jar.contains("sparkinfer") || jar.contains("onnxruntime"));
      StandaloneCluster.Submission submission = cluster.submitJar("sql-file", applicationJar(), SqlFileApp.class.getName(),
          List.of(runtimeJar), Map.of("spark.sql.extensions", "io.github.sparkinfer.spark.SparkInferenceExtensions",
              "spark.executor.cores", "2"), List.of(sql.toString(), output.toString()), APP_TIMEOUT);
      assertThat(submission.succeeded()).as(submission.describe()).isTrue();
    }

    Map<Integer, List<JsonNode>> results = readResults(output);
    assertThat(results.get(6)).extracting(JsonNode::toString).containsExactly(
        "{\"kind\":\"input\",\"position\":0,\"name\":\"features\",\"element_type\":\"float\",\"shape\":\"[batch, 16]\"}",
        "{\"kind\":\"output\",\"position\":0,\"name\":\"scores\",\"element_type\":\"float\",\"shape\":\"[batch, 4]\"}");

    assertThat(results.get(7)).hasSize(POINTS);
    for (JsonNode row : results.get(7)) {
      long id = row.get("id").asLong();
      float[] expected = mlp.forward(MiniLmReference.sineFeatures(id, 1));
      // fp32 ORT on the executor against the Java forward pass, as the local tests.
      assertFloats(row.get("scores"), expected, 1e-5f, "scores of row " + id);
    }

    try (HuggingFaceTokenizer direct = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizer).optPadding(false)
            .optTruncation(true).optMaxLength(128).build();
        OrtSession session = OrtEnvironment.getEnvironment().createSession(miniLm.toString(),
            new OrtSession.SessionOptions())) {
      assertThat(results.get(8)).hasSize(TEXTS.size());
      for (JsonNode row : results.get(8)) {
        long[] ids = direct.encode(TEXTS.get(row.get("id").asInt())).getIds();
        float[] expected = MiniLmReference.meanPooledUnit(session, ids);
        // Padded batches against one unpadded text per run, both fp32 on the CPU.
        assertFloats(row.get("embedding"), expected, 1e-5f, "embedding of text " + row.get("id"));
      }
      assertThat(results.get(9)).hasSize(TEXTS.size());
      for (JsonNode row : results.get(9)) {
        long[] ids = direct.encode(TEXTS.get(row.get("id").asInt())).getIds();
        JsonNode actual = row.get("ids");
        assertThat(actual.size()).as("padded to the tokenizer.json's 128").isEqualTo(128);
        for (int i = 0; i < 128; i++) {
          assertThat(actual.get(i).asLong()).as("token %d of text %s", i, row.get("id")).isEqualTo(i < ids.length ? ids[i] : 0);
        }
      }
    }

    assertThat(results.get(10)).hasSize(20);
    for (JsonNode row : results.get(10)) {
      long id = row.get("id").asLong();
      float[] a = mlp.forward(MiniLmReference.sineFeatures(id, 1));
      float[] b = mlp.forward(MiniLmReference.sineFeatures(id, 2));
      double dot = 0;
      double left = 0;
      double right = 0;
      double maxError = 0;
      int argmaxA = 0;
      int argmaxB = 0;
      for (int i = 0; i < a.length; i++) {
        dot += (double) a[i] * b[i];
        left += (double) a[i] * a[i];
        right += (double) b[i] * b[i];
        maxError = Math.max(maxError, Math.abs((double) a[i] - b[i]));
        argmaxA = a[i] > a[argmaxA] ? i : argmaxA;
        argmaxB = b[i] > b[argmaxB] ? i : argmaxB;
      }
      JsonNode c = row.get("c");
      // Inputs differ from the executor's outputs by fp32 rounding (1e-5 on outputs of ~1).
      assertThat(c.get("cosine").asDouble()).as("cosine of row %d", id).isCloseTo(dot / Math.sqrt(left * right), within(1e-5));
      assertThat(c.get("max_abs_error").asDouble()).as("max error of row %d", id).isCloseTo(maxError, within(2e-5));
      assertThat(c.get("argmax_equal").asBoolean()).as("argmax of row %d", id).isEqualTo(argmaxA == argmaxB);
    }

    Assumptions.assumeTrue(decoder != null, "generate() not submitted: ../shared/models/decoders is not beside this checkout");
    // Statements 11 and 12 are the SETs; 13 generates greedily on the executors.
    assertThat(results.get(13)).hasSize(PROMPTS.size());
    try (OrtSession session = OrtEnvironment.getEnvironment().createSession(decoder.toString(), new OrtSession.SessionOptions());
        HuggingFaceTokenizer gpt2 = HuggingFaceTokenizer.newInstance(decoder.resolveSibling("tokenizer.json"))) {
      DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
      for (JsonNode row : results.get(13)) {
        String prompt = PROMPTS.get(row.get("id").asInt());
        int[] ids = Arrays.stream(gpt2.encode(prompt).getIds()).mapToInt(id -> (int) id).toArray();
        // Greedy without the cache (the whole sequence at every step); no stop token is set, so -1.
        int[] expected = DecoderModels.referenceDecode(session, layout, ids, NEW_TOKENS, -1);
        JsonNode g = row.get("g");
        assertThat(g.get("text").asText()).as("text of '%s'", prompt)
            .isEqualTo(gpt2.decode(Arrays.stream(expected).mapToLong(token -> token).toArray(), true));
        assertThat(g.get("tokens").asInt()).as("tokens of '%s'", prompt).isEqualTo(NEW_TOKENS);
        assertThat(g.get("finish_reason").asText()).isEqualTo("length");
      }
    }
  }

  /** ../shared/models/decoders' GPT-2 export, or null where that folder is not beside the checkout. */
  private static Path sharedDecoder() {
    try {
      return DecoderModels.decoder("tiny-random-gpt2-fp32/past.onnx");
    } catch (org.opentest4j.TestAbortedException missing) {
      return null;
    }
  }

  @Test
  void exampleJobJarWithClassAsTheReadmeShows() throws Exception {
    Path jobJar = Path.of(System.getProperty("sparkinfer.examples.jar"));
    assertThat(jobJar).exists();
    try (StandaloneCluster cluster = StandaloneCluster.builder("example-job").worker(2, "2g").sparkJarsOnly()
        .start()) {
      StandaloneCluster.Submission submission = cluster.submitJar("score-parquet", jobJar,
          ScoreParquetJob.class.getName(), List.of(), Map.of("spark.executor.cores", "2"),
          List.of("--demo", "--rows", "20000", "--work-dir", folder.resolve("demo").toString()), APP_TIMEOUT);
      assertThat(submission.succeeded()).as(submission.describe()).isTrue();
      String log = Files.readString(submission.log(), StandardCharsets.UTF_8);
      // The demo checks three rows' scores against forward() itself and exits non-zero if they differ.
      assertThat(log).contains("(tolerance 1e-05): OK").contains("Scored 20000 rows");
    }
    assertThat(folder.resolve("demo").resolve("scored.parquet")).isDirectory();
  }
  private static void assertFloats(JsonNode actual, float[] expected, float tolerance, String what) {
    assertThat(actual.size()).as(what).isEqualTo(expected.length);
    for (int i = 0; i < expected.length; i++) {
      assertThat((float) actual.get(i).asDouble()).as("%s, value %d", what, i).isCloseTo(expected[i], within(tolerance));
    }
  }

  private static Map<Integer, List<JsonNode>> readResults(Path output) throws Exception {
    ObjectMapper json = new ObjectMapper();
    Map<Integer, List<JsonNode>> results = new TreeMap<>();
    for (String line : Files.readAllLines(output, StandardCharsets.UTF_8)) {
      String[] parts = line.split(" ", 3);
      results.computeIfAbsent(Integer.parseInt(parts[1]), statement -> new ArrayList<>()).add(json.readTree(parts[2]));
    }
    return results;
  }

  /** The runtime jar the build made, as the test class path has it (spark-runtime/target in a reactor build). */
  private static Path runtimeJar() {
    String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    for (String entry : classPath.split(java.io.File.pathSeparator)) {
      String name = Path.of(entry).getFileName().toString();
      if (name.matches("sparkinfer-spark-runtime-[0-9.]+_[0-9.]+-.*") && name.endsWith(".jar") && !name.contains("without")) {
        return Path.of(entry);
      }
    }
    throw new IllegalStateException("No sparkinfer-spark-runtime jar on the test class path: " + classPath);
  }

  /** A jar of SqlFileApp alone: the application jar; sparkinfer comes from --jars only. */
  private Path applicationJar() throws Exception {
    Path jar = folder.resolve("sql-file-app.jar");
    String entry = SqlFileApp.class.getName().replace('.', '/') + ".class";
    try (OutputStream out = Files.newOutputStream(jar); JarOutputStream jarOut = new JarOutputStream(out);
        InputStream in = SqlFileApp.class.getClassLoader().getResourceAsStream(entry)) {
      jarOut.putNextEntry(new JarEntry(entry));
      in.transferTo(jarOut);
      jarOut.closeEntry();
    }
    return jar;
  }

  private Path copyResource(String resource) throws Exception {
    Path file = folder.resolve(resource);
    try (InputStream in = getClass().getClassLoader().getResourceAsStream(resource)) {
      assertThat(in).as("%s on the test class path", resource).isNotNull();
      Files.copy(in, file);
    }
    return file;
  }
}
