package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.AttributeProto.AttributeType;
import com.google.protobuf.ByteString;
import java.util.Objects;

/** A named attribute of a graph node, such as Gemm's {@code transB} or Cast's {@code to}. */
public final class Attribute {
  private final AttributeProto proto;

  private Attribute(AttributeProto proto) {
    this.proto = proto;
  }

  public static Attribute ofInt(String name, long value) {
    return new Attribute(start(name, AttributeType.INT).setI(value).build());
  }

  public static Attribute ofFloat(String name, float value) {
    return new Attribute(start(name, AttributeType.FLOAT).setF(value).build());
  }

  public static Attribute ofInts(String name, long... values) {
    AttributeProto.Builder builder = start(name, AttributeType.INTS);
    for (long value : values) {
      builder.addInts(value);
    }
    return new Attribute(builder.build());
  }

  public static Attribute ofFloats(String name, float... values) {
    AttributeProto.Builder builder = start(name, AttributeType.FLOATS);
    for (float value : values) {
      builder.addFloats(value);
    }
    return new Attribute(builder.build());
  }

  public static Attribute ofString(String name, String value) {
    Objects.requireNonNull(value, "value");
    ByteString utf8 = ByteString.copyFromUtf8(value);
    return new Attribute(start(name, AttributeType.STRING).setS(utf8).build());
  }

  private static AttributeProto.Builder start(String name, AttributeType type) {
    Objects.requireNonNull(name, "name");
    if (name.isEmpty()) {
      throw new IllegalArgumentException("Attribute name must not be empty");
    }
    // ONNX requires the type since IR 2: without it, a 0 int and an absent value look alike.
    return AttributeProto.newBuilder().setName(name).setType(type);
  }

  public String name() {
    return proto.getName();
  }

  AttributeProto proto() {
    return proto;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Attribute && ((Attribute) other).proto.equals(proto);
  }

  @Override
  public int hashCode() {
    return proto.hashCode();
  }

  @Override
  public String toString() {
    switch (proto.getType()) {
      case INT:
        return name() + "=" + proto.getI();
      case FLOAT:
        return name() + "=" + proto.getF();
      case INTS:
        return name() + "=" + proto.getIntsList();
      case FLOATS:
        return name() + "=" + proto.getFloatsList();
      case STRING:
        return name() + "=\"" + proto.getS().toStringUtf8() + "\"";
      default:
        return name() + " (" + proto.getType() + ")";
    }
  }
}
