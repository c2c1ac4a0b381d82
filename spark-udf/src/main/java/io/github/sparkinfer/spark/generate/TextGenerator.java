package io.github.sparkinfer.spark.generate;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtException;
import java.util.List;

/**
 * Text in, text out over a {@link DecodeLoop}: each prompt through the template, encoded with the
 * model's tokenizer, checked against the model's vocabulary and context, decoded, and ended at the
 * first stop string. The text of a row is the tokenizer's decoding of its new tokens (special tokens
 * skipped), cut before a stop string.
 */
final class TextGenerator {
  /** The model's tokenizer, as generation uses it. */
  interface Tokens {
    long[] encode(String text);

    /** The text of {@code ids}, special tokens skipped. */
    String decode(long[] ids);
  }

  private final BatchDecoder loop;
  private final Tokens tokens;
  private final PromptTemplate template;
  private final int padToken;
  private final List<String> stopStrings;
  private final int longestStop;
  private final int maxContext;
  private final boolean truncateLeft;
  /** A token no prompt may hold (a packaged decode loop's padding, from which it finds positions); -1: none. */
  private final int refusedToken;

  TextGenerator(DecodeLoop loop, HuggingFaceTokenizer tokenizer, PromptTemplate template, int padToken,
      List<String> stopStrings) {
    this(loop, new Tokens() {
      @Override
      public long[] encode(String text) {
        return tokenizer.encode(text).getIds();
      }

      @Override
      public String decode(long[] ids) {
        return tokenizer.decode(ids, true);
      }
    }, template, padToken, stopStrings, 0, false, -1);
  }

  /**
   * @param maxContext the most tokens of prompt and new tokens together (0: no limit)
   * @param truncateLeft a longer prompt loses its first tokens (else {@link #encode} refuses it)
   */
  TextGenerator(BatchDecoder loop, Tokens tokens, PromptTemplate template, int padToken, List<String> stopStrings,
      int maxContext, boolean truncateLeft, int refusedToken) {
    this.refusedToken = refusedToken;
    this.loop = loop;
    this.tokens = tokens;
    this.template = template;
    this.padToken = padToken;
    this.stopStrings = List.copyOf(stopStrings);
    this.maxContext = maxContext;
    this.truncateLeft = truncateLeft;
    int longest = 0;
    for (String stop : this.stopStrings) {
      if (stop.isEmpty()) {
        throw new IllegalArgumentException("Invalid generate() stop string '': an empty stop string would end every"
            + " row before its first token. Remove it");
      }
      longest = Math.max(longest, stop.length());
    }
    this.longestStop = longest;
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
      try {
        encoded[row] = encode(prompts[row], options);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("The prompt of row " + row + ": " + e.getMessage(), e);
      }
    }
    return generate(encoded, options);
  }

  /**
   * A prompt's token ids, through the template and the tokenizer.
   *
   * @throws IllegalArgumentException naming the model and the fix when the prompt gives no tokens, a token
   *     outside the model's vocabulary, or more tokens than the context leaves room for
   */
  int[] encode(String prompt, GenerationOptions options) {
    long[] ids = tokens.encode(template.apply(prompt));
    if (ids.length == 0) {
      throw new IllegalArgumentException("the prompt gives no tokens, and model '" + loop.modelName() + "' needs at"
          + " least one to start from. Give it text, or a prompt template around it");
    }
    int from = 0;
    if (maxContext > 0 && (long) ids.length + options.maxNewTokens() > maxContext) {
      long room = maxContext - (long) options.maxNewTokens();
      if (!truncateLeft) {
        throw new IllegalArgumentException("the prompt has " + ids.length + " tokens, and with maxNewTokens="
            + options.maxNewTokens() + " that is more than model '" + loop.modelName() + "''s maxContext=" + maxContext
            + ". Shorten it, or set contextOverflow=truncate to drop its first " + (ids.length - room) + " tokens");
      }
      from = (int) (ids.length - room);
    }
    int[] encoded = new int[ids.length - from];
    for (int i = from; i < ids.length; i++) {
      // The tokenizer is a file of its own: its ids are checked against the model before they index anything.
      if (ids[i] < 0 || ids[i] >= loop.vocabularySize()) {
        throw new IllegalArgumentException("token id " + ids[i] + " at position " + i + " is outside model '"
            + loop.modelName() + "''s vocabulary of " + loop.vocabularySize() + " tokens: the tokenizer.json does not"
            + " belong to this model. Register the model's own tokenizer");
      }
      if (ids[i] == refusedToken) {
        throw new IllegalArgumentException("token id " + ids[i] + " at position " + i + " is the padding token of model '"
            + loop.modelName() + "''s own decode loop, which finds positions where a prompt is not padding; the row's"
            + " positions would be wrong. Remove that text from the prompt, or register the decoder itself");
      }
      encoded[i - from] = (int) ids[i];
    }
    return encoded;
  }

  /** Encoded prompts (from {@link #encode}) to their texts, in their order. */
  Result[] generate(int[][] encoded, GenerationOptions options) throws OrtException {
    DecodeLoop.StopCheck check = stopStrings.isEmpty() ? null : (prompt, generated) -> stopsEarly(generated);
    DecodeLoop.Generation[] generations = loop.generate(encoded, options, padToken, check);
    Result[] results = new Result[encoded.length];
    for (int row = 0; row < encoded.length; row++) {
      String text = decode(generations[row].tokens);
      int stop = stopAt(text);
      results[row] = new Result(stop >= 0 ? text.substring(0, stop) : text, generations[row].tokens.length,
          stop >= 0 ? "stop" : generations[row].finishReason);
    }
    return results;
  }

  /**
   * Whether the text of the last tokens holds a stop string. Only a tail is decoded, so the check
   * costs the same at every step; a token decodes to at least one character or to nothing, so a tail
   * of longestStop + 8 tokens holds any stop string that ends in the newest token.
   */
  private boolean stopsEarly(List<Integer> generated) {
    int from = Math.max(0, generated.size() - longestStop - 8);
    long[] tail = new long[generated.size() - from];
    for (int i = from; i < generated.size(); i++) {
      tail[i - from] = generated.get(i);
    }
    return stopAt(tokens.decode(tail)) >= 0;
  }

  String decode(int[] generated) {
    long[] ids = new long[generated.length];
    for (int i = 0; i < generated.length; i++) {
      ids[i] = generated[i];
    }
    return tokens.decode(ids);
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
