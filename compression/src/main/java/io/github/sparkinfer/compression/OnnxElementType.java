package io.github.sparkinfer.compression;

/** Element types of ONNX tensors, numbered as in onnx.proto's {@code TensorProto.DataType}. */
public enum OnnxElementType {
  FLOAT(1),
  UINT8(2),
  INT8(3),
  UINT16(4),
  INT16(5),
  INT32(6),
  INT64(7),
  STRING(8),
  BOOL(9),
  FLOAT16(10),
  DOUBLE(11),
  UINT32(12),
  UINT64(13),
  COMPLEX64(14),
  COMPLEX128(15),
  BFLOAT16(16),
  FLOAT8E4M3FN(17),
  FLOAT8E4M3FNUZ(18),
  FLOAT8E5M2(19),
  FLOAT8E5M2FNUZ(20),
  UINT4(21),
  INT4(22);

  private static final OnnxElementType[] BY_NUMBER = new OnnxElementType[INT4.number + 1];

  static {
    for (OnnxElementType type : values()) {
      BY_NUMBER[type.number] = type;
    }
  }

  private final int number;

  OnnxElementType(int number) {
    this.number = number;
  }

  /** The number ONNX models store for this type. */
  public int onnxNumber() {
    return number;
  }

  /**
   * The type a model's number stands for.
   *
   * @throws IllegalArgumentException for 0 (undefined) and for numbers newer than this enum
   */
  public static OnnxElementType fromOnnxNumber(int number) {
    if (number <= 0 || number >= BY_NUMBER.length) {
      throw new IllegalArgumentException("Unknown ONNX tensor element type number: " + number);
    }
    return BY_NUMBER[number];
  }
}
