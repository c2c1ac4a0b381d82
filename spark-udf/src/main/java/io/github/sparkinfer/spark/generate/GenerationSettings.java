package io.github.sparkinfer.spark.generate;

import io.github.sparkinfer.device.ModelSource;
import java.io.Serializable;
import java.util.List;
import java.util.Objects;

/**
 * How generate() runs one decoder, resolved on the driver at analysis and shipped in the plan: the
 * cache layout read from the graph, the padding side, the tokenizer, the decoding options, the prompt
 * template, the stop strings, the context limit and what a longer prompt does, and how many prompts
 * decode together. Immutable; built by the registry once every value is checked.
 */
public final class GenerationSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Prompts decoded together when unset: a CPU core gains little past a few rows. */
  public static final int BATCH_SIZE_CPU_DEFAULT = 8;

  /** Prompts decoded together on a GPU or NPU when unset: each step is one small token per row. */
  public static final int BATCH_SIZE_ACCELERATOR_DEFAULT = 128;

  /** The most tokens of a vocabulary: per-row work arrays are sized by it. */
  public static final long MAX_VOCABULARY = DecoderLayout.MAX_VOCABULARY;

  /** The inputs a model packaging ONNX Runtime's decode loop may declare: generate() feeds each. */
  public static final List<String> PACKAGED_INPUTS = GraphDecoding.PACKAGED_INPUTS;

  /** The most prompts of one batch: the cache of every row is held at once. */
  public static final int BATCH_SIZE_MAX = 4096;

  /** The decoder's cache layout; null for a model that packages its own decode loop. */
  private final DecoderLayout layout;
  /** The model's own decode loop (ONNX Runtime's GreedySearch, Sampling or BeamSearch); null for a decoder. */
  private final io.github.sparkinfer.compression.PackagedSearch packaged;
  private final boolean leftPadding;
  private final ModelSource tokenizer;
  private final GenerationOptions options;
  private final PromptTemplate template;
  private final List<String> stopStrings;
  private final int maxContext;
  private final boolean truncateLeft;
  private final int batchSize;
  private final String decodeLoop;

  /**
   * @param maxContext the most tokens of prompt and generated text together; 0: no limit
   * @param truncateLeft a longer prompt loses its first tokens; otherwise its row fails
   * @param batchSize prompts decoded together; 0: the device decides
   * @param decodeLoop auto, java or graph (see GenerateOption.DECODE_LOOP)
   */
  public GenerationSettings(DecoderLayout layout, boolean leftPadding, ModelSource tokenizer,
      GenerationOptions options, PromptTemplate template, List<String> stopStrings, int maxContext,
      boolean truncateLeft, int batchSize, String decodeLoop) {
    this(layout, null, leftPadding, tokenizer, options, template, stopStrings, maxContext, truncateLeft, batchSize,
        decodeLoop);
  }

  /** A model whose graph holds ONNX Runtime's decode loop ({@code packaged}): it runs as it is, in one run. */
  public GenerationSettings(io.github.sparkinfer.compression.PackagedSearch packaged, ModelSource tokenizer,
      GenerationOptions options, PromptTemplate template, int maxContext, boolean truncateLeft, int batchSize) {
    this(null, Objects.requireNonNull(packaged, "packaged"), true, tokenizer, options, template, List.of(), maxContext,
        truncateLeft, batchSize, "graph");
  }

  private GenerationSettings(DecoderLayout layout, io.github.sparkinfer.compression.PackagedSearch packaged,
      boolean leftPadding, ModelSource tokenizer, GenerationOptions options, PromptTemplate template,
      List<String> stopStrings, int maxContext, boolean truncateLeft, int batchSize, String decodeLoop) {
    this.layout = packaged == null ? Objects.requireNonNull(layout, "layout") : null;
    this.packaged = packaged;
    this.leftPadding = leftPadding;
    this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
    this.options = Objects.requireNonNull(options, "options");
    this.template = Objects.requireNonNull(template, "template");
    this.stopStrings = List.copyOf(stopStrings);
    this.maxContext = maxContext;
    this.truncateLeft = truncateLeft;
    this.batchSize = batchSize;
    this.decodeLoop = Objects.requireNonNull(decodeLoop, "decodeLoop");
  }

  /** Why the decode loop cannot run inside ONNX Runtime for this decoder and these options, or null. */
  public static String whyNotInGraph(DecoderLayout layout, GenerationOptions options, int stopStrings) {
    return GraphDecoding.whyNot(layout, options, stopStrings);
  }

  /** auto, java or graph. */
  public String decodeLoop() {
    return decodeLoop;
  }

  /** The one stop token the loop inside ONNX Runtime ends rows at (when it can run there). */
  public int graphStopToken() {
    return options.stopTokenIds()[0];
  }

  /**
   * Whether the decode loop runs inside one ONNX Runtime run on {@code device}: asked for (graph), or
   * auto on a GPU or NPU where the model and the options allow it.
   */
  public boolean decodesInGraph(io.github.sparkinfer.device.Device device) {
    return packaged != null || decodeLoop.equals("graph") || (decodeLoop.equals("auto") && device.isAccelerator()
        && GraphDecoding.whyNot(layout, options, stopStrings.size()) == null);
  }

  /** The decoder's cache layout; null when the model packages its own decode loop ({@link #packaged()}). */
  public DecoderLayout layout() {
    return layout;
  }

  /** The model's own decode loop, or null for a decoder with a cache. */
  public io.github.sparkinfer.compression.PackagedSearch packaged() {
    return packaged;
  }

  /** The model's vocabulary: its logits' last dimension. */
  public long vocabularySize() {
    return packaged != null ? packaged.vocabularySize() : layout.vocabularySize();
  }

  /** Whether batches are padded on the left (every attention but GroupQueryAttention). */
  public boolean leftPadding() {
    return leftPadding;
  }

  public ModelSource tokenizer() {
    return tokenizer;
  }

  public GenerationOptions options() {
    return options;
  }

  public PromptTemplate template() {
    return template;
  }

  public List<String> stopStrings() {
    return stopStrings;
  }

  /** The most tokens of prompt and new tokens together; 0: no limit. */
  public int maxContext() {
    return maxContext;
  }

  /** Whether a prompt longer than the context allows loses its first tokens (else its row fails). */
  public boolean truncateLeft() {
    return truncateLeft;
  }

  /** Prompts decoded together on {@code device}: the setting, else the device's default. */
  public int batchSizeOn(io.github.sparkinfer.device.Device device) {
    return batchSize > 0 ? batchSize : device.isAccelerator() ? BATCH_SIZE_ACCELERATOR_DEFAULT : BATCH_SIZE_CPU_DEFAULT;
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof GenerationSettings)) {
      return false;
    }
    GenerationSettings that = (GenerationSettings) other;
    return Objects.equals(layout, that.layout) && Objects.equals(packaged, that.packaged)
        && leftPadding == that.leftPadding && tokenizer.equals(that.tokenizer)
        && options.equals(that.options) && template.equals(that.template) && stopStrings.equals(that.stopStrings)
        && maxContext == that.maxContext && truncateLeft == that.truncateLeft && batchSize == that.batchSize
        && decodeLoop.equals(that.decodeLoop);
  }

  @Override
  public int hashCode() {
    return Objects.hash(layout, packaged, leftPadding, tokenizer, options, template, stopStrings, maxContext, truncateLeft,
        batchSize, decodeLoop);
  }

  @Override
  public String toString() {
    return "tokenizer " + tokenizer.uri() + ", " + (packaged != null ? packaged : layout) + ", padding " + (leftPadding ? "left" : "right")
        + ", maxContext " + maxContext + ", batchSize " + batchSize;
  }
}
