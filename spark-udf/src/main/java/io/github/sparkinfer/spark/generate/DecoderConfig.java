package io.github.sparkinfer.spark.generate;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.github.sparkinfer.spark.text.TokenizerJson;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the exporter wrote beside a decoder that generate() uses as defaults: the end-of-sequence
 * token ids (a row stops there unless stopTokenIds says otherwise) and the context length (the
 * default maxContext), from ONNX Runtime GenAI's {@code genai_config.json} ({@code model.eos_token_id},
 * {@code model.context_length}) or Hugging Face's {@code generation_config.json} / {@code config.json}
 * ({@code eos_token_id}, {@code max_position_embeddings}, {@code n_positions}). The files are the
 * user's: read with a streaming parser, bounded in size and depth, and only numbers in range are taken.
 */
public final class DecoderConfig {
  /** The files read, in order: the first that names a value gives it. */
  public static final List<String> FILES = List.of("genai_config.json", "generation_config.json", "config.json");

  static final long MAX_BYTES = 16L << 20;
  /** Token ids of one list: real configs name one to a few. */
  static final int MAX_IDS = 64;

  private final int[] eosTokenIds;
  private final long contextLength;

  private DecoderConfig(int[] eosTokenIds, long contextLength) {
    this.eosTokenIds = eosTokenIds;
    this.contextLength = contextLength;
  }

  /** Nothing known. */
  public static DecoderConfig none() {
    return new DecoderConfig(null, 0);
  }

  /** The end-of-sequence ids, or null when no file names them. */
  public int[] eosTokenIds() {
    return eosTokenIds == null ? null : eosTokenIds.clone();
  }

  /** The model's context in tokens, or 0 when no file names it. */
  public long contextLength() {
    return contextLength;
  }

  /** This config, with what {@code other} names where this one names nothing. */
  public DecoderConfig orElse(DecoderConfig other) {
    return new DecoderConfig(eosTokenIds != null ? eosTokenIds : other.eosTokenIds,
        contextLength > 0 ? contextLength : other.contextLength);
  }

  /**
   * Reads one config file.
   *
   * @throws IOException naming why when the file is not a JSON object, is over {@value #MAX_BYTES}
   *     bytes or nests too deep
   */
  public static DecoderConfig read(Path file) throws IOException {
    long size = Files.size(file);
    if (size > MAX_BYTES) {
      throw new IOException("it is " + size + " bytes, over the " + MAX_BYTES + " a model's config may have");
    }
    try (JsonParser parser = new JsonFactory().createParser(file.toFile())) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        throw new IOException("it is not a JSON object");
      }
      return object(parser, 1);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IOException(e.getOriginalMessage(), e);
    }
  }

  /** The fields of an object whose START_OBJECT was read; genai_config.json nests them under "model". */
  private static DecoderConfig object(JsonParser parser, int depth) throws IOException {
    DecoderConfig found = none();
    for (JsonToken token = parser.nextToken(); token == JsonToken.FIELD_NAME; token = parser.nextToken()) {
      String name = parser.getCurrentName();
      JsonToken value = parser.nextToken();
      if (name.equals("eos_token_id")) {
        int[] ids = ids(parser, value, depth);
        if (ids != null && found.eosTokenIds == null) {
          found = new DecoderConfig(ids, found.contextLength);
        }
      } else if ((name.equals("context_length") || name.equals("max_position_embeddings") || name.equals("n_positions"))
          && value == JsonToken.VALUE_NUMBER_INT && parser.getNumberType() != JsonParser.NumberType.BIG_INTEGER
          && parser.getLongValue() > 0 && found.contextLength == 0) {
        found = new DecoderConfig(found.eosTokenIds, parser.getLongValue());
      } else if (name.equals("model") && value == JsonToken.START_OBJECT && depth == 1) {
        found = object(parser, depth + 1).orElse(found);
      } else {
        TokenizerJson.skip(parser, value, depth);
      }
    }
    return found;
  }

  /** One id or an array of ids; null when the value is neither (then skipped). */
  private static int[] ids(JsonParser parser, JsonToken value, int depth) throws IOException {
    if (value == JsonToken.VALUE_NUMBER_INT) {
      return inRange(parser) ? new int[] {parser.getIntValue()} : null;
    }
    if (value != JsonToken.START_ARRAY) {
      TokenizerJson.skip(parser, value, depth);
      return null;
    }
    List<Integer> ids = new ArrayList<>();
    boolean valid = true;
    for (JsonToken token = parser.nextToken(); token != JsonToken.END_ARRAY; token = parser.nextToken()) {
      if (token == null) {
        throw new IOException("it ends in the middle of a value");
      }
      if (token == JsonToken.VALUE_NUMBER_INT && inRange(parser) && ids.size() < MAX_IDS) {
        ids.add(parser.getIntValue());
      } else {
        valid = false;
        TokenizerJson.skip(parser, token, depth + 1);
      }
    }
    return valid && !ids.isEmpty() ? ids.stream().mapToInt(Integer::intValue).toArray() : null;
  }

  private static boolean inRange(JsonParser parser) throws IOException {
    return parser.getNumberType() == JsonParser.NumberType.INT && parser.getIntValue() >= 0;
  }
}
