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
    float[] sum = new float[dimension];
    for (int r = 0; r < batch.length; r++) {
      java.util.Arrays.fill(sum, 0f);
      int tokens = ids[batch[r]].length;
      if (shape.length == 2) {
        addRow(address + (long) r * dimension * 4, dimension, sum);
      } else if (pooling == TextSettings.Pooling.CLS) {
        addRow(address + (long) r * length * dimension * 4, dimension, sum);
      } else {
        for (int t = 0; t < tokens; t++) {
          addRow(address + ((long) r * length + t) * dimension * 4, dimension, sum);
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

  private static void addRow(long address, int dimension, float[] sum) {
    for (int k = 0; k < dimension; k++) {
      sum[k] += Platform.getFloat(null, address + 4L * k);
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
