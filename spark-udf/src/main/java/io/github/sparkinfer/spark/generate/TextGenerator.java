package io.github.sparkinfer.spark.generate;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtException;
import java.util.List;

/**
 * Text in, text out over a {@link DecodeLoop}: each prompt through the template, encoded with the
 * model's tokenizer, decoded, and ended at the first stop string. The text of a row is the
 * tokenizer's decoding of its new tokens (special tokens skipped), cut before a stop string.
 */
final class TextGenerator {
  private final DecodeLoop loop;
  private final HuggingFaceTokenizer tokenizer;
  private final PromptTemplate template;
  private final int padToken;
  private final List<String> stopStrings;

  TextGenerator(DecodeLoop loop, HuggingFaceTokenizer tokenizer, PromptTemplate template, int padToken,
      List<String> stopStrings) {
    this.loop = loop;
    this.tokenizer = tokenizer;
    this.template = template;
    this.padToken = padToken;
    this.stopStrings = List.copyOf(stopStrings);
    for (String stop : this.stopStrings) {
      if (stop.isEmpty()) {
        throw new IllegalArgumentException("Invalid generate() stop string '': an empty stop string would end every"
            + " row before its first token. Remove it");
      }
    }
  }

  /** One row's result: its text, how many tokens were generated, and why it ended (stop or length). */
  static final class Result {
    final String text;
    final int tokens;
    final String finishReason;

    Result(String text, int tokens, String finishReason) {
      this.text = text;
      this.tokens = tokens;
      this.finishReason = finishReason;
    }
  }

  Result[] generate(String[] prompts, GenerationOptions options) throws OrtException {
    int[][] encoded = new int[prompts.length][];
    for (int row = 0; row < prompts.length; row++) {
      long[] ids = tokenizer.encode(template.apply(prompts[row])).getIds();
      encoded[row] = new int[ids.length];
      for (int i = 0; i < ids.length; i++) {
        // The tokenizer is a file of its own: its ids are checked against the model before they index anything.
        if (ids[i] < 0 || ids[i] >= loop.vocabularySize()) {
          throw new IllegalArgumentException("The prompt of row " + row + " has token id " + ids[i] + " at position "
              + i + ", outside model '" + loop.modelName() + "''s vocabulary of " + loop.vocabularySize() + " tokens:"
              + " the tokenizer.json does not belong to this model. Register the model's own tokenizer");
        }
        encoded[row][i] = (int) ids[i];
      }
    }
    DecodeLoop.StopCheck check = stopStrings.isEmpty() ? null
        : (prompt, generated) -> stopAt(decode(generated.stream().mapToInt(Integer::intValue).toArray())) >= 0;
    DecodeLoop.Generation[] generations = loop.generate(encoded, options, padToken, check);
    Result[] results = new Result[prompts.length];
    for (int row = 0; row < prompts.length; row++) {
      String text = decode(generations[row].tokens);
      int stop = stopAt(text);
      results[row] = new Result(stop >= 0 ? text.substring(0, stop) : text, generations[row].tokens.length,
          generations[row].finishReason);
    }
    return results;
  }

  String decode(int[] tokens) {
    long[] ids = new long[tokens.length];
    for (int i = 0; i < tokens.length; i++) {
      ids[i] = tokens[i];
    }
    return tokenizer.decode(ids, true);
  }

  /** Where the earliest stop string starts in {@code text}, or -1. */
  private int stopAt(String text) {
    int earliest = -1;
    for (String stop : stopStrings) {
      int at = text.indexOf(stop);
      if (at >= 0 && (earliest < 0 || at < earliest)) {
        earliest = at;
      }
    }
    return earliest;
  }
}
