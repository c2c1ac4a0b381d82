package io.github.sparkinfer.device;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A window [position, end) of a mapped protobuf file, read as protobuf wire-format fields, {@code
 * depth} messages deep. The file is hostile: messages may nest at most {@link #MAX_DEPTH} deep
 * ({@link TooDeep} past that, before a stack overflows), texts are bounded ({@link #MAX_TEXT_BYTES}),
 * and a field that runs past its message, a truncated or overlong varint or an unknown wire type is
 * an {@link IllegalArgumentException} (an {@link IndexOutOfBoundsException} where the buffer ends).
 * Groups are skipped without recursion.
 */
final class ProtobufReader {
  /** protobuf's default recursion limit (C++ and Java), which ONNX Runtime parses models with. */
  static final int MAX_DEPTH = 100;
  // PATH_MAX on Linux: no real location is longer.
  static final int MAX_TEXT_BYTES = 4096;

  private final ByteBuffer bytes;
  private int position;
  private final int end;
  private final int depth;

  /** The whole of {@code bytes}, as the top-level message. */
  ProtobufReader(ByteBuffer bytes) {
    this(bytes, 0, bytes.limit(), 0);
  }

  private ProtobufReader(ByteBuffer bytes, int position, int end, int depth) {
    this.bytes = bytes;
    this.position = position;
    this.end = end;
    this.depth = depth;
  }

  boolean more() {
    return position < end;
  }

  long varint() {
    long value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (position >= end) {
        throw new IllegalArgumentException("truncated varint at byte " + position);
      }
      byte b = bytes.get(position++);
      value |= (long) (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return value;
      }
    }
    throw new IllegalArgumentException("varint too long at byte " + position);
  }

  ProtobufReader message() {
    if (depth >= MAX_DEPTH) {
      throw new TooDeep();
    }
    int length = length();
    ProtobufReader inner = new ProtobufReader(bytes, position, position + length, depth + 1);
    position += length;
    return inner;
  }

  /** A string field of at most MAX_TEXT_BYTES bytes, else null (and skipped). */
  String text() {
    int length = length();
    if (length > MAX_TEXT_BYTES) {
      position += length;
      return null;
    }
    byte[] text = new byte[length];
    bytes.get(position, text);
    position += length;
    return new String(text, StandardCharsets.UTF_8);
  }

  private int length() {
    long length = varint();
    if (length < 0 || length > end - position) {
      throw new IllegalArgumentException("field of " + length + " bytes at byte " + position + " runs past its message");
    }
    return (int) length;
  }

  void skip(long key) {
    if ((key & 7) == 3) {
      skipGroup();
      return;
    }
    skipValue(key);
  }

  // A group (deprecated, but protobuf still parses it): skipped without recursion, nesting counted as messages.
  private void skipGroup() {
    int groups = 1;
    while (groups > 0) {
      if (depth + groups > MAX_DEPTH) {
        throw new TooDeep();
      }
      long key = varint();
      if ((key & 7) == 3) {
        groups++;
      } else if ((key & 7) == 4) {
        groups--;
      } else {
        skipValue(key);
      }
    }
  }

  private void skipValue(long key) {
    switch ((int) (key & 7)) {
      case 0:
        varint();
        break;
      case 1:
        position += 8;
        break;
      case 2:
        int length = length();  // read first: it moves past the length's own bytes
        position += length;
        break;
      case 5:
        position += 4;
        break;
      default:
        throw new IllegalArgumentException("wire type " + (key & 7) + " at byte " + position);
    }
    if (position > end || position < 0) {
      throw new IllegalArgumentException("field runs past its message at byte " + position);
    }
  }

  /** Messages nested deeper than ONNX Runtime parses. */
  static final class TooDeep extends RuntimeException {
    private static final long serialVersionUID = 1L;

    TooDeep() {
      super(null, null, false, false);
    }
  }
}
