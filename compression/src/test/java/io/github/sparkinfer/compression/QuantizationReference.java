package io.github.sparkinfer.compression;

/**
 * What the int8 graph computes, in plain Java from the ONNX operator definitions: an independent
 * reference for ORT's fused kernels.
 */
final class QuantizationReference {
  private QuantizationReference() {}

  /**
   * DynamicQuantizeLinear over the whole activation (rows x k), then MatMulInteger with the int8
   * weight (k x n, zero point 0), Cast, times activationScale * weightScale, plus the bias.
   *
   * @param weightScales one scale, or one per output column
   * @param bias n values or null
   */
  static float[] dynamicInt8Linear(
      float[] activation,
      int rows,
      int k,
      byte[] weight,
      float[] weightScales,
      int n,
      float[] bias) {
    // ONNX DynamicQuantizeLinear: the range always includes 0; rounding is half to even.
    float min = 0;
    float max = 0;
    for (float value : activation) {
      min = Math.min(min, value);
      max = Math.max(max, value);
    }
    float scale = (max - min) / 255f;
    if (scale == 0) {
      scale = 1;
    }
    int zeroPoint = (int) Math.max(0, Math.min(255, Math.rint(0 - min / scale)));
    int[] quantized = new int[activation.length];
    for (int i = 0; i < activation.length; i++) {
      quantized[i] = (int) Math.max(0, Math.min(255, Math.rint(activation[i] / scale) + zeroPoint));
    }
    float[] output = new float[rows * n];
    for (int row = 0; row < rows; row++) {
      for (int column = 0; column < n; column++) {
        long sum = 0;
        for (int i = 0; i < k; i++) {
          sum += (long) (quantized[row * k + i] - zeroPoint) * weight[i * n + column];
        }
        float combined = scale * weightScales[weightScales.length == 1 ? 0 : column];
        output[row * n + column] = (float) sum * combined + (bias == null ? 0 : bias[column]);
      }
    }
    return output;
  }

  static float[] relu(float[] values) {
    float[] result = values.clone();
    for (int i = 0; i < result.length; i++) {
      result[i] = Math.max(0, result[i]);
    }
    return result;
  }

  /**
   * The signed weight values of a quantized weight stored in raw_data: an INT8 tensor's bytes as
   * they are, a UINT8 tensor's (the u8u8 scheme) less its zero point of 128.
   */
  static byte[] int8(ai.onnx.proto.OnnxMl.TensorProto tensor) {
    byte[] stored = tensor.getRawData().toByteArray();
    if (tensor.getDataType() == OnnxElementType.INT8.onnxNumber()) {
      return stored;
    }
    if (tensor.getDataType() != OnnxElementType.UINT8.onnxNumber()) {
      throw new AssertionError(tensor.getName() + " is neither INT8 nor UINT8 but " + tensor.getDataType());
    }
    byte[] values = new byte[stored.length];
    for (int i = 0; i < stored.length; i++) {
      int value = (stored[i] & 0xff) - 128;
      if (value < -127) {
        throw new AssertionError(tensor.getName() + "[" + i + "] is 0: u8u8 stores weights in [1, 255]");
      }
      values[i] = (byte) value;
    }
    return values;
  }
}
