package io.github.sparkinfer.spark.generate;

import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * Chooses one row's next token from its logits: repetition penalty over the row's tokens so far
 * (prompt included, as Hugging Face and ONNX Runtime apply it), then the most likely token (greedy),
 * or a sample after temperature, top-k and top-p. Each row samples from its own generator seeded by
 * the options' seed and the row's prompt, so a row's text does not depend on the rows batched with it.
 * One chooser per row; not thread-safe.
 */
final class NextTokenChooser {
  /**
   * The vocabulary-sized work arrays, shared by the rows of one batch (rows choose one after another):
   * per-row arrays of the vocabulary's size would take rows x vocabulary x 12 bytes of heap.
   */
  static final class Scratch {
    final String modelName;
    final float[] scores;
    /** Sampling: score and token packed in one long per token, sorted without boxing; null when greedy. */
    final long[] order;

    Scratch(String modelName, int vocabulary, GenerationOptions options) {
      this.modelName = modelName;
      this.scores = new float[vocabulary];
      this.order = options.isGreedy() ? null : new long[vocabulary];
    }
  }

  private final GenerationOptions options;
  private final SplittableRandom random;
  /** Tokens in the row so far, for the repetition penalty; null without one. */
  private final BitSet seen;
  private final Scratch scratch;

  NextTokenChooser(GenerationOptions options, int[] prompt, Scratch scratch) {
    this.options = options;
    this.random = new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L + Arrays.hashCode(prompt));
    this.seen = options.repetitionPenalty() != 1 ? new BitSet() : null;
    this.scratch = scratch;
    for (int token : prompt) {
      remember(token);
    }
  }

  /** Marks {@code token} as in the row, for the repetition penalty. */
  void remember(int token) {
    if (seen != null && token >= 0 && token < scratch.scores.length) {
      seen.set(token);
    }
  }

  /** The next token from {@code vocabulary} logits starting at {@code offset}. */
  int choose(FloatBuffer logits, int offset) {
    float[] scores = scratch.scores;
    long[] order = scratch.order;
    int vocabulary = scores.length;
    float penalty = (float) options.repetitionPenalty();
    for (int token = 0; token < vocabulary; token++) {
      float score = logits.get(offset + token);
      if (Float.isNaN(score)) {
        // Every comparison with NaN is false: argmax would return token 0 without a word.
        throw new IllegalStateException("Model '" + scratch.modelName + "' gave a NaN logit for token " + token + ":"
            + " its numbers overflowed or the weights hold NaN (float16 models can overflow). Run it at higher precision"
            + " (spark.sparkinfer.model." + scratch.modelName + ".precision=fp32) or check the export");
      }
      if (seen != null && seen.get(token)) {
        score = score < 0 ? score * penalty : score / penalty;
      }
      scores[token] = score;
    }
    if (options.isGreedy()) {
      return argmax();
    }
    double temperature = options.temperature();
    for (int token = 0; token < vocabulary; token++) {
      // High half: the score's bits flipped so that ascending order is most likely first; low half: the token,
      // so ties go by token id and the order never depends on the sort.
      int bits = Float.floatToIntBits(scores[token]);
      int ordered = bits ^ ((bits >> 31) & 0x7fffffff);
      order[token] = ((long) ~ordered << 32) | token;
    }
    Arrays.sort(order);
    int kept = options.topK() > 0 ? Math.min(options.topK(), vocabulary) : vocabulary;
    double max = scores[(int) order[0]] / temperature;
    double[] weights = new double[kept];
    double total = 0;
    for (int i = 0; i < kept; i++) {
      weights[i] = Math.exp(scores[(int) order[i]] / temperature - max);
      total += weights[i];
    }
    if (options.topP() < 1) {
      // The smallest set of most likely tokens whose probability reaches topP (at least one).
      double cumulative = 0;
      int nucleus = 0;
      while (nucleus < kept) {
        cumulative += weights[nucleus] / total;
        nucleus++;
        if (cumulative >= options.topP()) {
          break;
        }
      }
      kept = nucleus;
      total = 0;
      for (int i = 0; i < kept; i++) {
        total += weights[i];
      }
    }
    double draw = random.nextDouble() * total;
    for (int i = 0; i < kept; i++) {
      draw -= weights[i];
      if (draw < 0) {
        return (int) order[i];
      }
    }
    return (int) order[kept - 1];
  }

  private int argmax() {
    float[] scores = scratch.scores;
    int best = 0;
    for (int token = 1; token < scores.length; token++) {
      if (scores[token] > scores[best]) {
        best = token;
      }
    }
    return best;
  }
}
