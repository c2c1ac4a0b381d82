package io.github.sparkinfer.spark.text;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads what the driver needs from a Hugging Face tokenizer.json, {@code truncation.max_length},
 * with a streaming parser that stops there: the file is read as a user gave it (hostile), so no tree
 * of it is built, nesting and size are bounded, and a bad file is an IOException naming why, never a
 * StackOverflowError or an OutOfMemoryError on the driver.
 */
public final class TokenizerJson {
  // Real tokenizer.json files nest a few levels and weigh up to a few tens of MB.
  static final int MAX_DEPTH = 64;
  static final long MAX_BYTES = 256L << 20;

  private TokenizerJson() {}

  /**
   * The file's {@code truncation.max_length}, or 0 when it has none (no truncation, null, not a
   * positive int).
   *
   * @throws IOException when the file is not a JSON object, nests deeper than {@value #MAX_DEPTH}
   *     levels or is over {@link #MAX_BYTES} bytes
   */
  public static int truncationMaxLength(Path file) throws IOException {
    long size = Files.size(file);
    if (size > MAX_BYTES) {
      throw new IOException("it is " + size + " bytes, over the " + MAX_BYTES + " a tokenizer.json may have");
    }
    try (JsonParser parser = new JsonFactory().createParser(file.toFile())) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        throw new IOException("it is not a JSON object");
      }
      for (JsonToken token = parser.nextToken(); token == JsonToken.FIELD_NAME; token = parser.nextToken()) {
        String name = parser.getCurrentName();
        JsonToken value = parser.nextToken();
        if (!"truncation".equals(name)) {
          skip(parser, value, 1);
        } else if (value != JsonToken.START_OBJECT) {
          skip(parser, value, 1);
          return 0;
        } else {
          return maxLength(parser);
        }
      }
      return 0;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException(e.getOriginalMessage(), e);
    }
  }

  private static int maxLength(JsonParser parser) throws IOException {
    int found = 0;
    for (JsonToken token = parser.nextToken(); token == JsonToken.FIELD_NAME; token = parser.nextToken()) {
      String name = parser.getCurrentName();
      JsonToken value = parser.nextToken();
      if ("max_length".equals(name) && value == JsonToken.VALUE_NUMBER_INT
          && parser.getNumberType() == JsonParser.NumberType.INT && parser.getIntValue() > 0) {
        found = parser.getIntValue();
      } else {
        skip(parser, value, 2);
      }
    }
    return found;
  }

  /**
   * Skips a value at {@code depth}, counting its depth against {@value #MAX_DEPTH} (skipChildren has no
   * bound): the one way sparkinfer skips parts of a JSON file a user gave.
   */
  public static void skip(JsonParser parser, JsonToken value, int depth) throws IOException {
    if (value != JsonToken.START_OBJECT && value != JsonToken.START_ARRAY) {
      if (value == null) {
        throw new IOException("it ends in the middle of a value");
      }
      return;
    }
    int open = 1;
    while (open > 0) {
      JsonToken token = parser.nextToken();
      if (token == null) {
        throw new IOException("it ends in the middle of a value");
      } else if (token == JsonToken.START_OBJECT || token == JsonToken.START_ARRAY) {
        if (depth + ++open > MAX_DEPTH) {
          throw new IOException("it nests deeper than " + MAX_DEPTH + " levels (at byte "
              + parser.getCurrentLocation().getByteOffset() + ")");
        }
      } else if (token == JsonToken.END_OBJECT || token == JsonToken.END_ARRAY) {
        open--;
      }
    }
  }
}
