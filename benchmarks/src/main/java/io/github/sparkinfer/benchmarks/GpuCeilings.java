package io.github.sparkinfer.benchmarks;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.device.OrtEnvironments;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;

/**
 * What the hardware does without Spark, for the GPU benchmark's ratios: all-MiniLM-L6-v2 on the GPU
 * over texts tokenized before the clock starts, sorted by length and cut into batches under a token
 * budget (the inputs built as tensors in advance), run by a few threads on one session; and the
 * tokenizer alone on every core.
 */
final class GpuCeilings {
  private GpuCeilings() {}

  /** Texts per second of the tokenizer alone, all cores, over {@code texts} repeated for at least {@code seconds}. */
  static double tokenizerTextsPerSecond(Path tokenizerFile, List<String> texts, double seconds) throws Exception {
    try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile)
        .optMaxLength(SentenceEmbedder.MAX_TOKENS).optTruncation(true).optPadding(false).build()) {
      String[] all = texts.toArray(new String[0]);
      IntStream.range(0, all.length).parallel().forEach(i -> tokenizer.encode(all[i]));  // warm-up
      long start = System.nanoTime();
      long done = 0;
      while (System.nanoTime() - start < seconds * 1e9) {
        IntStream.range(0, all.length).parallel().forEach(i -> tokenizer.encode(all[i]));
        done += all.length;
      }
      return done / ((System.nanoTime() - start) / 1e9);
    }
  }

  /** Pre-tokenized, length-sorted batches of at most {@code tokenBudget} padded tokens, as tensors. */
  static List<Map<String, OnnxTensor>> textBatches(Path tokenizerFile, List<String> texts, long tokenBudget,
      List<String> inputNames) throws Exception {
    long[][] ids = new long[texts.size()][];
    try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile)
        .optMaxLength(SentenceEmbedder.MAX_TOKENS).optTruncation(true).optPadding(false).build()) {
      for (int i = 0; i < ids.length; i++) {
        ids[i] = tokenizer.encode(texts.get(i)).getIds();
      }
    }
    Integer[] order = IntStream.range(0, ids.length).boxed().toArray(Integer[]::new);
    Arrays.sort(order, Comparator.comparingInt((Integer i) -> ids[i].length).reversed());
    OrtEnvironment environment = OrtEnvironments.get();
    List<Map<String, OnnxTensor>> batches = new ArrayList<>();
    int start = 0;
    while (start < order.length) {
      int length = ids[order[start]].length;
      int rows = (int) Math.max(1, Math.min(order.length - start, tokenBudget / length));
      ByteBuffer idBuffer = ByteBuffer.allocateDirect(rows * length * 8).order(ByteOrder.nativeOrder());
      ByteBuffer maskBuffer = ByteBuffer.allocateDirect(rows * length * 8).order(ByteOrder.nativeOrder());
      ByteBuffer typeBuffer = ByteBuffer.allocateDirect(rows * length * 8).order(ByteOrder.nativeOrder());
      for (int r = 0; r < rows; r++) {
        long[] row = ids[order[start + r]];
        for (int t = 0; t < length; t++) {
          idBuffer.putLong((r * length + t) * 8, t < row.length ? row[t] : 0);
          maskBuffer.putLong((r * length + t) * 8, t < row.length ? 1 : 0);
        }
      }
      long[] shape = {rows, length};
      Map<String, OnnxTensor> inputs = new java.util.HashMap<>();
      for (String name : inputNames) {
        ByteBuffer source = name.equals("input_ids") ? idBuffer : name.equals("attention_mask") ? maskBuffer : typeBuffer;
        inputs.put(name, OnnxTensor.createTensor(environment, source.asLongBuffer(), shape));
      }
      batches.add(inputs);
      start += rows;
    }
    return batches;
  }

  /**
   * Texts per second of {@code session} over {@code batches} of {@code texts} texts in all, by
   * {@code threads} threads taking batches in turn, repeated for at least {@code seconds}.
   */
  static double textsPerSecond(OrtSession session, List<Map<String, OnnxTensor>> batches, int texts, int threads,
      double seconds) throws Exception {
    runAll(session, batches, threads);  // warm-up: CUDA kernels, the arena
    long start = System.nanoTime();
    long done = 0;
    while (System.nanoTime() - start < seconds * 1e9) {
      runAll(session, batches, threads);
      done += texts;
    }
    return done / ((System.nanoTime() - start) / 1e9);
  }

  private static void runAll(OrtSession session, List<Map<String, OnnxTensor>> batches, int threads) throws Exception {
    AtomicInteger next = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> workers = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        workers.add(pool.submit(() -> {
          for (int b = next.getAndIncrement(); b < batches.size(); b = next.getAndIncrement()) {
            try (OrtSession.Result result = session.run(batches.get(b))) {
              // The output comes back to the host, as sparkinfer's does.
              ((OnnxTensor) result.get(0)).getFloatBuffer();
            } catch (OrtException e) {
              throw new IllegalStateException(e);
            }
          }
          return null;
        }));
      }
      for (Future<?> worker : workers) {
        worker.get();
      }
    } finally {
      pool.shutdown();
    }
  }
}
