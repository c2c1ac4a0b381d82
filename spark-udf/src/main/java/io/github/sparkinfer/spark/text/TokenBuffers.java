package io.github.sparkinfer.spark.text;

import io.github.sparkinfer.spark.batch.DirectBuffers;
import io.github.sparkinfer.spark.registry.TextSettings;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import java.nio.ByteBuffer;
import org.apache.spark.unsafe.Platform;

/**
 * The direct buffers of a text batch's token inputs (input_ids, attention_mask, token_type_ids),
 * [rows, length] zero-padded, reused from batch to batch and handed to ONNX Runtime without a copy.
 * One per task: not thread-safe.
 */
final class TokenBuffers {
  private ByteBuffer ids = DirectBuffers.allocate(8);
  private ByteBuffer mask = DirectBuffers.allocate(8);
  private ByteBuffer types = DirectBuffers.allocate(8);
  private long cells;

  /** Writes row r = the tokens of text {@code batch[r]}, padded to {@code length}; returns the real tokens. */
  long fill(long[][] tokenIds, int[] batch, int length) {
    cells = (long) batch.length * length;
    ids = ensure(ids, cells * 8);
    mask = ensure(mask, cells * 8);
    types = ensure(types, cells * 8);
    long idsAddress = DirectBuffers.address(ids);
    long maskAddress = DirectBuffers.address(mask);
    Platform.setMemory(idsAddress, (byte) 0, cells * 8);
    Platform.setMemory(maskAddress, (byte) 0, cells * 8);
    Platform.setMemory(DirectBuffers.address(types), (byte) 0, cells * 8);
    long realTokens = 0;
    for (int r = 0; r < batch.length; r++) {
      long[] tokens = tokenIds[batch[r]];
      Platform.copyMemory(tokens, Platform.LONG_ARRAY_OFFSET, null, idsAddress + (long) r * length * 8, tokens.length * 8L);
      for (int t = 0; t < tokens.length; t++) {
        Platform.putLong(null, maskAddress + ((long) r * length + t) * 8, 1L);
      }
      realTokens += tokens.length;
    }
    return realTokens;
  }

  /** A tensor of the last {@link #fill} for model input {@code spec}; the caller closes it after the run. */
  OnnxTensor tensor(OrtEnvironment environment, TensorSpec spec, long[] shape) throws OrtException {
    ByteBuffer longs = spec.name().equals(TextSettings.INPUT_IDS) ? ids
        : spec.name().equals(TextSettings.ATTENTION_MASK) ? mask : types;
    if (spec.elementType() == TensorElementType.INT64) {
      return OnnxTensor.createTensor(environment, DirectBuffers.prefix(longs, cells * 8), shape, OnnxJavaType.INT64);
    }
    // int32 token inputs: narrow in place into the buffer's first half.
    long address = DirectBuffers.address(longs);
    for (long i = 0; i < cells; i++) {
      Platform.putInt(null, address + 4 * i, (int) Platform.getLong(null, address + 8 * i));
    }
    return OnnxTensor.createTensor(environment, DirectBuffers.prefix(longs, cells * 4), shape, OnnxJavaType.INT32);
  }

  private static ByteBuffer ensure(ByteBuffer buffer, long bytes) {
    return buffer.capacity() >= bytes ? buffer : DirectBuffers.allocate(bytes);
  }
}
