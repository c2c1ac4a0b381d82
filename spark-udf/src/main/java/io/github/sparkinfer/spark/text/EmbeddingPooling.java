package io.github.sparkinfer.spark.text;

import io.github.sparkinfer.spark.registry.TextSettings;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.unsafe.Platform;

/**
 * From a text batch's model output to one vector per text: token states pooled (mean over the
 * text's own tokens, or the first token), scaled to unit length if asked, and each vector handed
 * to Spark as an UnsafeArrayData over a reused byte array. One per task: not thread-safe.
 */
final class EmbeddingPooling {
  private final TextSettings.Pooling pooling;
  private final boolean normalize;
  private final UnsafeArrayData vector = new UnsafeArrayData();
  private byte[] vectorBytes = new byte[0];
  private float[] states = new float[0];

  EmbeddingPooling(TextSettings.Pooling pooling, boolean normalize) {
    this.pooling = pooling;
    this.normalize = normalize;
  }

  /**
   * Pools the output at {@code address} (float, shape [rows, length, dim] or [rows, dim]) of the
   * batch whose row r is text {@code batch[r]} (token ids {@code ids[batch[r]]}) into {@code vectors}
   * at that text's place.
   */
  void pool(long address, long[] shape, long[][] ids, int[] batch, int length, float[] vectors) {
    int dimension = (int) shape[shape.length - 1];
    boolean first = shape.length == 2 || pooling == TextSettings.Pooling.CLS;
    long rowFloats = shape.length == 2 ? dimension : (long) length * dimension;
    float[] sum = new float[dimension];
    for (int r = 0; r < batch.length; r++) {
      int tokens = ids[batch[r]].length;
      int used = first ? dimension : tokens * dimension;
      // One copy of the row's token states into a Java array, then plain loops over it (the JIT
      // vectorizes them): reading each float from native memory on its own took 97 % of embed()'s
      // task time on the GPU host. The same additions in the same order as before, so the same result.
      if (states.length < used) {
        states = new float[used];
      }
      Platform.copyMemory(null, address + r * rowFloats * 4, states, Platform.FLOAT_ARRAY_OFFSET, 4L * used);
      if (first) {
        System.arraycopy(states, 0, sum, 0, dimension);
      } else {
        java.util.Arrays.fill(sum, 0f);
        for (int t = 0; t < tokens; t++) {
          int offset = t * dimension;
          for (int k = 0; k < dimension; k++) {
            sum[k] += states[offset + k];
          }
        }
        for (int k = 0; k < dimension; k++) {
          sum[k] /= tokens;
        }
      }
      if (normalize) {
        double norm = 0;
        for (float value : sum) {
          norm += (double) value * value;
        }
        float scale = norm > 0 ? (float) (1.0 / Math.sqrt(norm)) : 0f;
        for (int k = 0; k < dimension; k++) {
          sum[k] *= scale;
        }
      }
      System.arraycopy(sum, 0, vectors, batch[r] * dimension, dimension);
    }
  }

  /** Vector {@code row} of {@code vectors}; valid until the next call. */
  UnsafeArrayData vector(float[] vectors, int row, int dimension) {
    int header = UnsafeArrayData.calculateHeaderPortionInBytes(dimension);
    int size = header + ((dimension * 4 + 7) & ~7);
    if (vectorBytes.length < size) {
      vectorBytes = new byte[size];
    }
    java.util.Arrays.fill(vectorBytes, 0, size, (byte) 0);
    Platform.putLong(vectorBytes, Platform.BYTE_ARRAY_OFFSET, dimension);
    Platform.copyMemory(vectors, Platform.FLOAT_ARRAY_OFFSET + 4L * row * dimension, vectorBytes,
        Platform.BYTE_ARRAY_OFFSET + header, 4L * dimension);
    vector.pointTo(vectorBytes, Platform.BYTE_ARRAY_OFFSET, size);
    return vector;
  }
}
