package io.github.sparkinfer.device;

/** Element types of model inputs and outputs that sparkinfer can feed and read. */
public enum TensorElementType {
  FLOAT("float", 4),
  DOUBLE("double", 8),
  INT32("int32", 4),
  INT64("int64", 8),
  /** Any other ONNX type (strings, bool, int8, fp16, ...): listed in signatures, not fed or read. */
  UNSUPPORTED("unsupported", 0);

  private final String displayName;
  private final int byteSize;

  TensorElementType(String displayName, int byteSize) {
    this.displayName = displayName;
    this.byteSize = byteSize;
  }

  public int byteSize() {
    return byteSize;
  }

  public String displayName() {
    return displayName;
  }
}
