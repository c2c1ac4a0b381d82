package io.github.sparkinfer.spark.registry;

/**
 * Sizes of batch buffers, computed in long from what a model file, a setting or a row says
 * (rows × tokens × dimension × element size), so that no product wraps around into a small or
 * negative size: one direct buffer or Java array holds at most {@link #MAX_BYTES} bytes.
 */
public final class BufferSizes {
  /** The most bytes one direct buffer (or Java array) of a batch may hold. */
  public static final long MAX_BYTES = Integer.MAX_VALUE - 64;

  private BufferSizes() {}

  /** The product of {@code factors} (each at least 0), or Long.MAX_VALUE when it exceeds long. */
  public static long product(long... factors) {
    long product = 1;
    for (long factor : factors) {
      if (factor < 0) {
        throw new IllegalArgumentException("Negative size " + factor);
      }
      if (factor != 0 && product > Long.MAX_VALUE / factor) {
        // Saturates; a later factor of 0 still gives 0.
        for (long rest : factors) {
          if (rest == 0) {
            return 0;
          }
        }
        return Long.MAX_VALUE;
      }
      product *= factor;
    }
    return product;
  }

  /**
   * Checks that a text model's window of {@code windowRows} rows can hold one float vector of
   * {@code dimension} values per row (the window's vectors are one array), and throws naming the
   * setting, its value and the largest value that fits otherwise.
   */
  public static void checkWindow(String model, long windowRows, long dimension, String windowKey) {
    long bytes = product(windowRows, dimension, Float.BYTES);
    if (bytes > MAX_BYTES) {
      throw new IllegalArgumentException("Model '" + model + "': " + windowKey + "=" + windowRows + " rows of "
          + dimension + "-value embeddings need " + (bytes == Long.MAX_VALUE ? "more than 2^63" : Long.toString(bytes))
          + " bytes for one window's vectors, more than one buffer can hold (" + MAX_BYTES + " bytes). Set "
          + windowKey + " to at most " + Math.max(1, MAX_BYTES / Math.max(1, (long) Float.BYTES * dimension)));
    }
  }
}
