package io.github.sparkinfer.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.device.OrtEnvironments;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Variant (a), the ceiling: ONNX Runtime alone over the same rows in batches, with no Spark and
 * no copying in the timed loop. The inputs are direct native-order buffers wrapped as tensors
 * before timing; the outputs go to pinned tensors whose buffers are copied into one float array,
 * so every score is read.
 *
 * <p>{@link #runParallel} is a diagnostic: the same batches on several threads, each calling a
 * one-thread session as sparkinfer's tasks do, to tell ONNX Runtime's own scaling from Spark's
 * cost.
 */
final class OrtCeiling implements AutoCloseable {
  private final OrtSession session;
  private final String outputName;
  private final int rows;
  private final int batchSize;
  private final int outputSize;
  private final List<Map<String, OnnxTensor>> batchInputs;
  private final int[] batchRows;
  private final Map<String, OnnxTensor> fullOutput;
  private final FloatBuffer fullOutputBuffer;
  private final Map<String, OnnxTensor> tailOutput;
  private final FloatBuffer tailOutputBuffer;
  private final float[] scores;

  /** Fills every batch's input from {@link TabularData#features}: rows 0 to rows - 1, in order. */
  OrtCeiling(
      OrtSession session,
      String inputName,
      String outputName,
      int outputSize,
      int rows,
      int batchSize)
      throws OrtException {
    this.session = session;
    this.outputName = outputName;
    this.rows = rows;
    this.batchSize = batchSize;
    this.outputSize = outputSize;
    OrtEnvironment environment = OrtEnvironments.get();
    int batches = (rows + batchSize - 1) / batchSize;
    this.batchInputs = new ArrayList<>(batches);
    this.batchRows = new int[batches];
    float[] row = new float[TabularData.FEATURES];
    for (int batch = 0; batch < batches; batch++) {
      int first = batch * batchSize;
      int count = Math.min(batchSize, rows - first);
      FloatBuffer buffer = RowAtATimeUdf.directFloats(count * TabularData.FEATURES);
      for (int i = 0; i < count; i++) {
        TabularData.features(first + i, row, 0);
        buffer.put(i * TabularData.FEATURES, row);
      }
      batchRows[batch] = count;
      batchInputs.add(
          Map.of(
              inputName,
              OnnxTensor.createTensor(
                  environment, buffer, new long[] {count, TabularData.FEATURES})));
    }
    this.fullOutputBuffer = RowAtATimeUdf.directFloats(batchSize * outputSize);
    this.fullOutput =
        Map.of(
            outputName,
            OnnxTensor.createTensor(
                environment, fullOutputBuffer, new long[] {batchSize, outputSize}));
    int tail = rows % batchSize;
    if (tail == 0) {
      this.tailOutputBuffer = fullOutputBuffer;
      this.tailOutput = fullOutput;
    } else {
      this.tailOutputBuffer = RowAtATimeUdf.directFloats(tail * outputSize);
      this.tailOutput =
          Map.of(
              outputName,
              OnnxTensor.createTensor(environment, tailOutputBuffer, new long[] {tail, outputSize}));
    }
    this.scores = new float[Math.multiplyExact(rows, outputSize)];
  }

  /** Runs the first {@code batches} batches, or all of them; the timed part of the variant. */
  void run(int batches) throws OrtException {
    int limit = Math.min(batches, batchInputs.size());
    for (int batch = 0; batch < limit; batch++) {
      int count = batchRows[batch];
      boolean full = count == batchSize;
      // The scores land in the pinned output's buffer; the result holds nothing else.
      session.run(batchInputs.get(batch), full ? fullOutput : tailOutput).close();
      (full ? fullOutputBuffer : tailOutputBuffer)
          .get(0, scores, batch * batchSize * outputSize, count * outputSize);
    }
  }

  void runAll() throws OrtException {
    run(batchInputs.size());
  }

  /**
   * Runs every batch on {@code threads} threads, thread t taking batches t, t + threads, ..., each
   * with its own output tensors, through {@code threadSession}.
   */
  void runParallel(OrtSession threadSession, int threads) throws Exception {
    List<Callable<Void>> workers = new ArrayList<>();
    for (int thread = 0; thread < threads; thread++) {
      int first = thread;
      workers.add(() -> {
        OrtEnvironment environment = OrtEnvironments.get();
        FloatBuffer buffer = RowAtATimeUdf.directFloats(batchSize * outputSize);
        Map<String, OnnxTensor> output = Map.of(outputName,
            OnnxTensor.createTensor(environment, buffer, new long[] {batchSize, outputSize}));
        try {
          for (int batch = first; batch < batchInputs.size(); batch += threads) {
            int count = batchRows[batch];
            if (count == batchSize) {
              threadSession.run(batchInputs.get(batch), output).close();
              buffer.get(0, scores, batch * batchSize * outputSize, count * outputSize);
            } else {
              try (OrtSession.Result result = threadSession.run(batchInputs.get(batch))) {
                float[][] tail = (float[][]) result.get(0).getValue();
                for (int i = 0; i < count; i++) {
                  System.arraycopy(tail[i], 0, scores, (batch * batchSize + i) * outputSize,
                      outputSize);
                }
              }
            }
          }
        } finally {
          output.values().forEach(OnnxTensor::close);
        }
        return null;
      });
    }
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      for (Future<Void> done : pool.invokeAll(workers)) {
        done.get();
      }
    } finally {
      pool.shutdown();
    }
  }

  int rows() {
    return rows;
  }

  /** Row {@code id}'s scores from the last run that covered it. */
  float[] scores(long id) {
    float[] result = new float[outputSize];
    System.arraycopy(scores, Math.toIntExact(id * outputSize), result, 0, outputSize);
    return result;
  }

  @Override
  public void close() {
    for (Map<String, OnnxTensor> inputs : batchInputs) {
      inputs.values().forEach(OnnxTensor::close);
    }
    fullOutput.values().forEach(OnnxTensor::close);
    tailOutput.values().forEach(OnnxTensor::close);
  }
}
