package io.github.sparkinfer.connect;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.generate.DecoderLayout;
import io.github.sparkinfer.spark.generate.DecoderModels;
import io.github.sparkinfer.spark.reference.MiniLmReference;
import java.io.InputStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real Spark Connect server on 127.0.0.1 with sparkinfer installed (the runtime jar on its class
 * path, spark.sql.extensions), and the JVM Spark Connect client in a JVM of its own (only
 * spark-connect-client-jvm): registration with SET, model_info, predict, embed and generate through SQL
 * and through the client's DataFrame API, each value checked here against the MLP's Java forward pass,
 * against ONNX Runtime called directly on DJL's token ids, and against a greedy decode without the cache.
 */
@Timeout(value = 6, unit = TimeUnit.MINUTES)
class TestSparkConnect {
  private static final List<String> TEXTS = List.of("Spark runs the model in the executors.", "a quick brown fox");
  /** ConnectClientApp's prompts: single letters, inside the tiny GPT-2's vocabulary of 1,000. */
  private static final List<String> PROMPTS = List.of("a b c d e", "s t");

  @TempDir Path folder;

  @Test
  void sqlAndDataFrameApiThroughSparkConnect() throws Exception {
    MultilayerPerceptronModel mlp = MultilayerPerceptronModel.builder().layerSizes(16, 32, 4).seed(7)
        .inputName("features").outputName("scores").build();
    Path mlpFile = folder.resolve("mlp.onnx");
    mlp.writeTo(mlpFile);
    Path miniLm = copyResource("all-minilm-l6-v2.onnx");
    Path tokenizer = copyResource("all-minilm-l6-v2-tokenizer.json");
    // The tiny GPT-2 of ../shared/models/decoders; where that folder is missing, the rest runs and the test ends skipped.
    Path decoder = sharedDecoder();

    int port;
    try (ServerSocket socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    Path serverLog = folder.resolve("server.log");
    String serverClassPath = serverClassPath();
    List<String> server = java(serverClassPath);
    server.addAll(List.of("-Xmx2g", "-Dspark.master=local[2]", "-Dspark.ui.enabled=false",
        "-Dspark.driver.host=127.0.0.1", "-Dspark.driver.bindAddress=127.0.0.1",
        "-Dspark.connect.grpc.binding.address=127.0.0.1", "-Dspark.connect.grpc.binding.port=" + port,
        "-Dspark.sql.extensions=io.github.sparkinfer.spark.SparkInferenceExtensions",
        "-Dspark.sql.warehouse.dir=" + folder.resolve("warehouse").toUri(),
        "org.apache.spark.sql.connect.service.SparkConnectServer"));
    Process serverProcess = start(server, serverClassPath, serverLog);
    try {
      awaitLine(serverLog, "Spark Connect server started at", serverProcess);

      Path output = folder.resolve("client.txt");
      Path clientLog = folder.resolve("client.log");
      String clientClassPath = classPath("sparkinfer.connect.client.classpath") + java.io.File.pathSeparator
          + Path.of(ConnectClientApp.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      List<String> client = java(clientClassPath);
      client.addAll(List.of("-Xmx1g", ConnectClientApp.class.getName(), "sc://127.0.0.1:" + port,
          mlpFile.toUri().toString(), miniLm.toUri().toString(), tokenizer.toUri().toString(), output.toString()));
      if (decoder != null) {
        client.addAll(List.of(decoder.toUri().toString(), decoder.resolveSibling("tokenizer.json").toUri().toString()));
      }
      Process clientProcess = start(client, clientClassPath, clientLog);
      boolean ended = clientProcess.waitFor(4, TimeUnit.MINUTES);
      String clientOutput = Files.readString(clientLog, StandardCharsets.UTF_8);
      assertThat(ended).as("client ended; its log:\n%s", clientOutput).isTrue();
      assertThat(clientProcess.exitValue()).as("client exit code; its log:\n%s", clientOutput).isZero();

      Map<String, List<JsonNode>> results = read(output);
      assertThat(results.get("model_info")).extracting(JsonNode::toString).containsExactly(
          "{\"kind\":\"input\",\"name\":\"features\",\"element_type\":\"float\",\"shape\":\"[batch, 16]\"}",
          "{\"kind\":\"output\",\"name\":\"scores\",\"element_type\":\"float\",\"shape\":\"[batch, 4]\"}");
      for (String name : List.of("sql_predict", "api_predict")) {
        assertThat(results.get(name)).as(name).hasSize(500);
        for (JsonNode row : results.get(name)) {
          long id = row.get("id").asLong();
          // fp32 ORT on the server against the Java forward pass, as the other tests.
          assertFloats(row.get("scores"), mlp.forward(MiniLmReference.sineFeatures(id, 1)), 1e-5f, name + " row " + id);
        }
      }
      try (HuggingFaceTokenizer direct = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizer).optPadding(false)
              .optTruncation(true).optMaxLength(128).build();
          OrtSession session = OrtEnvironment.getEnvironment().createSession(miniLm.toString(),
              new OrtSession.SessionOptions())) {
        for (String name : List.of("sql_embed", "api_embed")) {
          assertThat(results.get(name)).as(name).hasSize(TEXTS.size());
          for (JsonNode row : results.get(name)) {
            long[] ids = direct.encode(TEXTS.get(row.get("id").asInt())).getIds();
            // Padded batches against one unpadded text per run, both fp32 on the CPU.
            assertFloats(row.get("embedding"), MiniLmReference.meanPooledUnit(session, ids), 1e-5f, name + " text " + row.get("id"));
          }
        }
      }
      assertThat(results.get("plan")).as("the server's plan of a DataFrame API call").isNotNull();
      assertThat(results.get("plan").get(0).asText()).contains("BatchPredict predict(mlp, ");

      Assumptions.assumeTrue(decoder != null, "generate() not called: ../shared/models/decoders is not beside this checkout");
      try (OrtSession session = OrtEnvironment.getEnvironment().createSession(decoder.toString(), new OrtSession.SessionOptions());
          HuggingFaceTokenizer gpt2 = HuggingFaceTokenizer.newInstance(decoder.resolveSibling("tokenizer.json"))) {
        DecoderLayout layout = DecoderLayout.of("gpt2", DecoderModels.signature(session));
        for (String name : List.of("sql_generate", "api_generate")) {
          assertThat(results.get(name)).as(name).hasSize(PROMPTS.size());
          for (JsonNode row : results.get(name)) {
            String prompt = PROMPTS.get(row.get("id").asInt());
            int[] ids = Arrays.stream(gpt2.encode(prompt).getIds()).mapToInt(id -> (int) id).toArray();
            // Greedy without the cache (the whole sequence at every step); no stop token is set, so -1.
            int[] expected = DecoderModels.referenceDecode(session, layout, ids, 6, -1);
            JsonNode g = row.get("g");
            assertThat(g.get("text").asText()).as("%s text of '%s'", name, prompt)
                .isEqualTo(gpt2.decode(Arrays.stream(expected).mapToLong(token -> token).toArray(), true));
            assertThat(g.get("tokens").asInt()).as("%s tokens of '%s'", name, prompt).isEqualTo(6);
            assertThat(g.get("finish_reason").asText()).isEqualTo("length");
          }
        }
      }
    } finally {
      serverProcess.destroy();
      if (!serverProcess.waitFor(30, TimeUnit.SECONDS)) {
        serverProcess.destroyForcibly();
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

  private static void assertFloats(JsonNode actual, float[] expected, float tolerance, String what) {
    assertThat(actual.size()).as(what).isEqualTo(expected.length);
    for (int i = 0; i < expected.length; i++) {
      assertThat((float) actual.get(i).asDouble()).as("%s, value %d", what, i).isCloseTo(expected[i], within(tolerance));
    }
  }

  private static Map<String, List<JsonNode>> read(Path output) throws Exception {
    ObjectMapper json = new ObjectMapper();
    Map<String, List<JsonNode>> results = new TreeMap<>();
    for (String line : Files.readAllLines(output, StandardCharsets.UTF_8)) {
      String[] parts = line.split(" ", 2);
      JsonNode value = parts[0].equals("plan") ? json.getNodeFactory().textNode(parts[1]) : json.readTree(parts[1]);
      results.computeIfAbsent(parts[0], name -> new ArrayList<>()).add(value);
    }
    return results;
  }

  /** java with Spark's opens; the class path goes in CLASSPATH: ORT 1.29 fails with long command lines. */
  private static List<String> java(String classPath) {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(List.of(System.getProperty("sparkinfer.spark.jvm.opens").trim().split("\\s+")));
    return command;
  }

  private static Process start(List<String> command, String classPath, Path log) throws Exception {
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
    builder.environment().put("CLASSPATH", classPath);
    return builder.start();
  }

  /**
   * The provided scope (Spark, its Connect server, the runtime jar) and the jars it shares with the
   * client (Spark's common modules, Scala; Maven files those under the client's runtime scope, the
   * nearer path), but not the client itself.
   */
  private static String serverClassPath() throws Exception {
    List<String> entries = new ArrayList<>(List.of(classPath("sparkinfer.connect.server.classpath").split(java.io.File.pathSeparator)));
    for (String entry : classPath("sparkinfer.connect.client.classpath").split(java.io.File.pathSeparator)) {
      if (!Path.of(entry).getFileName().toString().startsWith("spark-connect-client-jvm") && !entries.contains(entry)) {
        entries.add(entry);
      }
    }
    return String.join(java.io.File.pathSeparator, entries);
  }

  private static String classPath(String property) throws Exception {
    return Files.readString(Path.of(System.getProperty(property)), StandardCharsets.UTF_8).trim();
  }

  /** Polls the log until {@code text} appears, the process ends, or two minutes pass. */
  private static void awaitLine(Path log, String text, Process process) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (System.nanoTime() < deadline) {
      if (Files.exists(log) && Files.readString(log, StandardCharsets.UTF_8).contains(text)) {
        return;
      }
      if (!process.isAlive()) {
        break;
      }
      process.waitFor(200, TimeUnit.MILLISECONDS);
    }
    throw new AssertionError("No '" + text + "' in the server's log; it ends:\n"
        + (Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "(no log)"));
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
