package io.github.sparkinfer.spark.batch;

import java.lang.reflect.Field;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import sun.misc.Unsafe;

/**
 * Direct, native-order buffers that ONNX Runtime reads and writes in place, and their native
 * addresses, so Spark's Platform can copy rows into them and out of them without a Java array in
 * between.
 */
public final class DirectBuffers {
  private static final Unsafe UNSAFE;
  private static final long ADDRESS_OFFSET;

  static {
    try {
      Field unsafeField = Unsafe.class.getDeclaredField("theUnsafe");
      unsafeField.setAccessible(true);
      UNSAFE = (Unsafe) unsafeField.get(null);
      ADDRESS_OFFSET = UNSAFE.objectFieldOffset(Buffer.class.getDeclaredField("address"));
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private DirectBuffers() {}

  public static ByteBuffer allocate(long bytes) {
    if (bytes > Integer.MAX_VALUE - 64) {
      throw new IllegalArgumentException(
          "Cannot allocate a tensor buffer of " + bytes + " bytes: larger than 2 GiB."
              + " Lower the batch size (spark.sparkinfer.model.<name>.batchSize)");
    }
    // At least 8 bytes so an empty batch still has a valid address.
    return ByteBuffer.allocateDirect((int) Math.max(bytes, 8)).order(ByteOrder.nativeOrder());
  }

  public static long address(ByteBuffer buffer) {
    return UNSAFE.getLong(buffer, ADDRESS_OFFSET);
  }

  /** A view of the first {@code bytes} bytes, for a tensor of exactly that size. */
  public static ByteBuffer prefix(ByteBuffer buffer, long bytes) {
    ByteBuffer view = buffer.duplicate().order(ByteOrder.nativeOrder());
    view.position(0).limit((int) bytes);
    return view;
  }

  /** A view of {@code bytes} bytes from {@code offset}. */
  static ByteBuffer slice(ByteBuffer buffer, long offset, long bytes) {
    ByteBuffer view = buffer.duplicate().order(ByteOrder.nativeOrder());
    view.position((int) offset).limit((int) (offset + bytes));
    return view.slice().order(ByteOrder.nativeOrder());
  }
}
