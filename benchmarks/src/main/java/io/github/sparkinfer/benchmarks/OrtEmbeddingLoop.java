package io.github.sparkinfer.benchmarks;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.onnxruntime.OrtException;
import java.util.Arrays;
import java.util.Comparator;
import java.util.function.IntPredicate;
import java.util.stream.IntStream;

/**
 * Variants (a) and (b) of {@link TextEmbeddingBenchmark}: ONNX Runtime driven by hand, no Spark,
 * from strings in memory to pooled vectors in row order, tokenization included.
 *
 * <ul>
 *   <li>{@link #fixedOrder}: batches of consecutive rows, each tokenized, padded and run in turn;
 *       what a job written without thought for padding does.
 *   <li>{@link #lengthSorted}: every row tokenized first, rows sorted by token count, then batches
 *       of that order, so a batch pads to a length close to its rows' own; the ceiling.
 * </ul>
 *
 * Both batch by row count, the same {@code batchSize}, so that the difference between them is the
 * ordering alone.
 */
final class OrtEmbeddingLoop {
  private final SentenceEmbedder embedder;
  private final int batchSize;
  private long modelTokens;
  private long realTokens;

  OrtEmbeddingLoop(SentenceEmbedder embedder, int batchSize) {
    this.embedder = embedder;
    this.batchSize = batchSize;
  }

  /** Variant (a): every row. */
  float[][] fixedOrder(String[] texts) throws OrtException {
    return fixedOrder(texts, row -> true);
  }

  /**
   * Variant (a), running only the batches that hold a row {@code wanted} accepts: those rows get
   * exactly the vectors a full run gives them, others stay null.
   */
  float[][] fixedOrder(String[] texts, IntPredicate wanted) throws OrtException {
    startCounting();
    float[][] vectors = new float[texts.length][];
    for (int first = 0; first < texts.length; first += batchSize) {
      int end = Math.min(texts.length, first + batchSize);
      int[] targets = IntStream.range(first, end).toArray();
      if (Arrays.stream(targets).noneMatch(wanted)) {
        continue;
      }
      Encoding[] batch = embedder.tokenize(Arrays.copyOfRange(texts, first, end));
      count(batch, embedder.embed(batch, vectors, targets));
    }
    return vectors;
  }

  /** Variant (b): every row. */
  float[][] lengthSorted(String[] texts) throws OrtException {
    return lengthSorted(texts, row -> true);
  }

  /** Variant (b), running only the batches that hold a row {@code wanted} accepts. */
  float[][] lengthSorted(String[] texts, IntPredicate wanted) throws OrtException {
    startCounting();
    Encoding[] encodings = embedder.tokenize(texts);
    // Stable, so equal lengths keep row order and a run is reproducible.
    int[] order =
        IntStream.range(0, texts.length)
            .boxed()
            .sorted(Comparator.comparingInt(row -> encodings[row].getIds().length))
            .mapToInt(Integer::intValue)
            .toArray();
    float[][] vectors = new float[texts.length][];
    for (int first = 0; first < order.length; first += batchSize) {
      int[] targets = Arrays.copyOfRange(order, first, Math.min(order.length, first + batchSize));
      if (Arrays.stream(targets).noneMatch(wanted)) {
        continue;
      }
      Encoding[] batch = new Encoding[targets.length];
      for (int i = 0; i < targets.length; i++) {
        batch[i] = encodings[targets[i]];
      }
      count(batch, embedder.embed(batch, vectors, targets));
    }
    return vectors;
  }

  /** Tokens the last run gave the model, padding included, per real token: 1.0 means none. */
  double paddingRatio() {
    return (double) modelTokens / realTokens;
  }

  private void startCounting() {
    modelTokens = 0;
    realTokens = 0;
  }

  private void count(Encoding[] batch, long batchModelTokens) {
    modelTokens += batchModelTokens;
    for (Encoding encoding : batch) {
      realTokens += encoding.getIds().length;
    }
  }
}
