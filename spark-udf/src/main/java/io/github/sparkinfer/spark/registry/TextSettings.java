package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;
import java.io.Serializable;
import java.util.Locale;
import java.util.Objects;

/**
 * How a text model turns strings into its inputs and its outputs into one embedding: the
 * tokenizer, the longest token sequence, pooling, normalization, and how rows are batched by
 * length. Resolved on the driver and shipped in the plan.
 */
public final class TextSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String TOKEN_TYPE_IDS = "token_type_ids";

  public enum Pooling {
    MEAN,
    CLS;

    static Pooling parse(String model, String key, String value) {
      try {
        return valueOf(value.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw Errors.analysis(
            "Invalid value '" + value + "' for " + key + " (model '" + model + "'): use mean or cls");
      }
    }
  }

  private final ModelSource tokenizer;
  private final int maxLength;
  private final Pooling pooling;
  private final boolean normalize;
  private final long tokenBudget;
  private final int windowRows;
  private final String embeddingOutput;
  private final String poolOnDevice;
  private final String crossTaskBatching;

  TextSettings(
      ModelSource tokenizer,
      int maxLength,
      Pooling pooling,
      boolean normalize,
      long tokenBudget,
      int windowRows,
      String embeddingOutput,
      String poolOnDevice,
      String crossTaskBatching) {
    this.tokenizer = tokenizer;
    this.maxLength = maxLength;
    this.pooling = pooling;
    this.normalize = normalize;
    this.tokenBudget = tokenBudget;
    this.windowRows = windowRows;
    this.embeddingOutput = embeddingOutput;
    this.poolOnDevice = poolOnDevice;
    this.crossTaskBatching = crossTaskBatching;
  }

  /** auto (on GPUs and NPUs), true (on every device) or false: whether an executor's tasks share text batches. */
  public String crossTaskBatching() {
    return crossTaskBatching;
  }

  /** Whether texts of this model on {@code device} go through the executor's shared queue. */
  public boolean batchesAcrossTasks(io.github.sparkinfer.device.Device device) {
    return crossTaskBatching.equals("true") || (crossTaskBatching.equals("auto") && device.isAccelerator());
  }

  /** auto (on GPUs and NPUs), true (on every device) or false: whether the model's graph pools. */
  public String poolOnDevice() {
    return poolOnDevice;
  }

  public ModelSource tokenizer() {
    return tokenizer;
  }

  public int maxLength() {
    return maxLength;
  }

  public Pooling pooling() {
    return pooling;
  }

  public boolean normalize() {
    return normalize;
  }

  /** Padded tokens per batch; 0 when not set (the device decides). */
  public long tokenBudget() {
    return tokenBudget;
  }

  /** Rows tokenized and sorted together; 0 when not set (the device decides). */
  public int windowRows() {
    return windowRows;
  }

  /** The output embeddings come from: rank 3 [batch, tokens, dim] is pooled, rank 2 taken as is. */
  public String embeddingOutput() {
    return embeddingOutput;
  }

  /**
   * The output embed() reads by default: the first float output of rank 3 (token states, pooled
   * here), else the first float output of rank 2 (already one vector per row).
   */
  static String defaultEmbeddingOutput(ModelBinding model) {
    for (int rank : new int[] {3, 2}) {
      for (TensorSpec output : model.signature().outputs()) {
        if (output.rank() == rank && output.elementType() == TensorElementType.FLOAT) {
          return output.name();
        }
      }
    }
    throw Errors.analysis(
        "Model '" + model.modelName() + "' has no float output of shape [batch, tokens, dim] or"
            + " [batch, dim] to take embeddings from; its outputs are " + model.signature().outputs());
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof TextSettings)) {
      return false;
    }
    TextSettings that = (TextSettings) other;
    return tokenizer.equals(that.tokenizer)
        && maxLength == that.maxLength
        && pooling == that.pooling
        && normalize == that.normalize
        && tokenBudget == that.tokenBudget
        && windowRows == that.windowRows
        && embeddingOutput.equals(that.embeddingOutput)
        && poolOnDevice.equals(that.poolOnDevice)
        && crossTaskBatching.equals(that.crossTaskBatching);
  }

  @Override
  public int hashCode() {
    return Objects.hash(tokenizer, maxLength, pooling, normalize, tokenBudget, windowRows, embeddingOutput, poolOnDevice,
        crossTaskBatching);
  }

  @Override
  public String toString() {
    return "tokenizer " + tokenizer.uri() + ", maxLength " + maxLength + ", pooling "
        + pooling.name().toLowerCase(Locale.ROOT) + ", normalize " + normalize;
  }
}
