package io.github.sparkinfer.benchmarks;

import ai.onnxruntime.OrtException;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.SessionSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.sql.api.java.UDF1;

/**
 * Variant (c) of {@link TextEmbeddingBenchmark}: the row-at-a-time embedding UDF a user would
 * write without sparkinfer. Per executor JVM one tokenizer and one session (from the shared model
 * cache, one intra-op thread because Spark runs a task per core); per row one tokenization and one
 * {@code session.run} of shape [1, L], so no padding and no batching. The embedding is {@link
 * SentenceEmbedder}'s, the same as the raw ONNX Runtime variants'.
 *
 * <p>The tokenizer is read from a local file: a {@code file:} URI, which is what a local-mode
 * benchmark has.
 */
final class RowAtATimeEmbeddingUdf implements UDF1<String, float[]> {
  private static final long serialVersionUID = 1L;

  // Per executor JVM, by model and tokenizer URI: loading either per task would dominate.
  private static final Map<String, SentenceEmbedder> EMBEDDERS = new ConcurrentHashMap<>();

  private final String modelName;
  private final String modelUri;
  private final String tokenizerUri;

  RowAtATimeEmbeddingUdf(String modelName, String modelUri, String tokenizerUri) {
    this.modelName = modelName;
    this.modelUri = modelUri;
    this.tokenizerUri = tokenizerUri;
  }

  @Override
  public float[] call(String body) throws OrtException {
    return body == null ? null : embedder().embed(body);
  }

  private SentenceEmbedder embedder() {
    String key = modelUri + "\n" + tokenizerUri;
    SentenceEmbedder embedder = EMBEDDERS.get(key);
    if (embedder == null) {
      embedder = EMBEDDERS.computeIfAbsent(key, unused -> load());
    }
    return embedder;
  }

  private SentenceEmbedder load() {
    try {
      return new SentenceEmbedder(
          SentenceEmbedder.loadTokenizer(Path.of(URI.create(tokenizerUri))),
          ModelCache.shared()
              .acquire(
                  ModelSource.of(modelName, modelUri),
                  SessionSettings.builder().intraOpThreads(1).build(),
                  RowAtATimeUdf.hadoopConfiguration())
              .session());
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read the tokenizer " + tokenizerUri, e);
    } catch (OrtException e) {
      throw new IllegalStateException("Cannot inspect model " + modelName + " at " + modelUri, e);
    }
  }
}
