package io.github.sparkinfer.spark.generate;

import java.io.Serializable;
import java.util.Arrays;

/**
 * How text is generated for one call: how many new tokens at most, greedy or sampled (temperature,
 * top-k, top-p, seed), the repetition penalty and the token ids that end a row. Immutable; every
 * value is checked when built, naming the option, the value and the range.
 */
public final class GenerationOptions implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The most new tokens one row may ask for: a bound before anything is sized by it. */
  public static final int MAX_NEW_TOKENS_LIMIT = 1 << 16;

  private final int maxNewTokens;
  private final double temperature;
  private final int topK;
  private final double topP;
  private final long seed;
  private final double repetitionPenalty;
  private final int[] stopTokenIds;
  private final int numBeams;

  /** The most beams per prompt: each is a row of the batch with its own cache. */
  public static final int MAX_BEAMS = 32;

  private GenerationOptions(Builder builder) {
    this.maxNewTokens = builder.maxNewTokens;
    this.temperature = builder.temperature;
    this.topK = builder.topK;
    this.topP = builder.topP;
    this.seed = builder.seed;
    this.repetitionPenalty = builder.repetitionPenalty;
    this.stopTokenIds = builder.stopTokenIds.clone();
    this.numBeams = builder.numBeams;
  }

  public static Builder builder() {
    return new Builder();
  }

  public int maxNewTokens() {
    return maxNewTokens;
  }

  /** 0: greedy (the most likely token every step). */
  public double temperature() {
    return temperature;
  }

  /** 0: no top-k filter. */
  public int topK() {
    return topK;
  }

  /** 1: no nucleus filter. */
  public double topP() {
    return topP;
  }

  public long seed() {
    return seed;
  }

  /** 1: none; above 1 makes tokens already in the row (prompt included) less likely. */
  public double repetitionPenalty() {
    return repetitionPenalty;
  }

  public int[] stopTokenIds() {
    return stopTokenIds.clone();
  }

  /** 1: greedy or sampled; more: beam search over that many beams per prompt. */
  public int numBeams() {
    return numBeams;
  }

  boolean isGreedy() {
    return temperature == 0 || topK == 1;
  }

  boolean stops(int token) {
    for (int stop : stopTokenIds) {
      if (stop == token) {
        return true;
      }
    }
    return false;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof GenerationOptions)) {
      return false;
    }
    GenerationOptions that = (GenerationOptions) other;
    return maxNewTokens == that.maxNewTokens && temperature == that.temperature && topK == that.topK
        && topP == that.topP && seed == that.seed && repetitionPenalty == that.repetitionPenalty
        && Arrays.equals(stopTokenIds, that.stopTokenIds) && numBeams == that.numBeams;
  }

  @Override
  public int hashCode() {
    return java.util.Objects.hash(maxNewTokens, temperature, topK, topP, seed, repetitionPenalty, numBeams)
        * 31 + Arrays.hashCode(stopTokenIds);
  }

  /** Builds {@link GenerationOptions}; the defaults are greedy decoding of at most 64 new tokens. */
  public static final class Builder {
    private int maxNewTokens = 64;
    private double temperature = 0;
    private int topK = 0;
    private double topP = 1;
    private long seed = 0;
    private double repetitionPenalty = 1;
    private int[] stopTokenIds = new int[0];
    private int numBeams = 1;

    private Builder() {}

    public Builder numBeams(int value) {
      if (value < 1 || value > MAX_BEAMS) {
        throw invalid("numBeams", value, "1 (no beam search) to " + MAX_BEAMS);
      }
      this.numBeams = value;
      return this;
    }

    public Builder maxNewTokens(int value) {
      if (value < 1 || value > MAX_NEW_TOKENS_LIMIT) {
        throw invalid("maxNewTokens", value, "1 to " + MAX_NEW_TOKENS_LIMIT);
      }
      this.maxNewTokens = value;
      return this;
    }

    public Builder temperature(double value) {
      if (!(value >= 0) || value > 100) {
        throw invalid("temperature", value, "0 (greedy) to 100");
      }
      this.temperature = value;
      return this;
    }

    public Builder topK(int value) {
      if (value < 0) {
        throw invalid("topK", value, "0 (no filter) or more");
      }
      this.topK = value;
      return this;
    }

    public Builder topP(double value) {
      if (!(value > 0) || value > 1) {
        throw invalid("topP", value, "above 0 and at most 1 (1: no filter)");
      }
      this.topP = value;
      return this;
    }

    public Builder seed(long value) {
      this.seed = value;
      return this;
    }

    public Builder repetitionPenalty(double value) {
      if (!(value > 0) || value > 100) {
        throw invalid("repetitionPenalty", value, "above 0 and at most 100 (1: none)");
      }
      this.repetitionPenalty = value;
      return this;
    }

    public Builder stopTokenIds(int... values) {
      for (int value : values) {
        if (value < 0) {
          throw invalid("stopTokenIds", value, "token ids of 0 or more");
        }
      }
      this.stopTokenIds = values.clone();
      return this;
    }

    public GenerationOptions build() {
      if (numBeams > 1 && !(temperature == 0 || topK == 1)) {
        throw new IllegalArgumentException("Invalid generate() options numBeams=" + numBeams + " with temperature="
            + temperature + ": beam search keeps the most likely sequences and does not sample. Set temperature=0, or"
            + " numBeams=1 to sample");
      }
      if (numBeams > 1 && repetitionPenalty != 1) {
        throw new IllegalArgumentException("Invalid generate() options numBeams=" + numBeams + " with repetitionPenalty="
            + repetitionPenalty + ": beam search does not apply a repetition penalty yet. Set repetitionPenalty=1, or"
            + " numBeams=1");
      }
      return new GenerationOptions(this);
    }

    private static IllegalArgumentException invalid(String option, Object value, String range) {
      return new IllegalArgumentException("Invalid generate() option " + option + "=" + value + ": it must be "
          + range);
    }
  }
}
