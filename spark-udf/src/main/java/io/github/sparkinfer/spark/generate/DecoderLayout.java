package io.github.sparkinfer.spark.generate;

import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.TensorSpec;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How a decoder-only ONNX model with a key/value cache is fed, read from its signature: the token,
 * mask and position inputs, the logits output, and per layer the cache tensors it takes (past) and
 * gives (present). Two layouts that real exporters write are recognized:
 * <ul>
 *   <li>{@link Style#COMBINED}: {@code onnxruntime.transformers}' GPT-2, one tensor per layer holding
 *       key and value, {@code past_N} [2, batch, heads, past, head size] / {@code present_N};
 *   <li>{@link Style#KEY_VALUE}: Hugging Face Optimum and ONNX Runtime GenAI's model builder,
 *       {@code past_key_values.N.key|value} [batch, key/value heads, past, head size] /
 *       {@code present.N.key|value}.
 * </ul>
 * The signature comes from a model file (hostile): names, counts and sizes are checked, and anything
 * the loop could not feed is refused here, naming the model, the tensor and what was expected.
 */
public final class DecoderLayout implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How a layer's cache is split into tensors. */
  public enum Style {
    COMBINED,
    KEY_VALUE
  }

  // More layers than any published decoder has; a bound before anything is sized by the count.
  static final int MAX_LAYERS = 1024;
  // Vocabularies of published decoders reach about 256 k tokens; per-row arrays are sized by it.
  static final long MAX_VOCABULARY = 1L << 24;

  private static final Pattern COMBINED_PAST = Pattern.compile("past_(\\d+)");
  private static final Pattern KEY_VALUE_PAST = Pattern.compile("past_key_values\\.(\\d+)\\.(key|value)");
  static final String INPUT_IDS = "input_ids";
  static final String ATTENTION_MASK = "attention_mask";
  static final String POSITION_IDS = "position_ids";
  static final String LOGITS = "logits";

  private final String modelName;
  private final Style style;
  private final TensorSpec inputIds;
  private final TensorSpec attentionMask;
  private final TensorSpec positionIds;
  private final TensorSpec logits;
  /** Per layer: the past tensors (1 when combined, key then value otherwise). */
  private final List<List<String>> pastNames;
  private final List<List<String>> presentNames;
  private final String cacheType;
  private final long cacheHeads;
  private final long headSize;
  private final long vocabularySize;

  private DecoderLayout(String modelName, Style style, Map<String, TensorSpec> inputs, TensorSpec logits,
      List<List<String>> pastNames, List<List<String>> presentNames, String cacheType, long cacheHeads,
      long headSize) {
    this.modelName = modelName;
    this.style = style;
    this.inputIds = inputs.get(INPUT_IDS);
    this.attentionMask = inputs.get(ATTENTION_MASK);
    this.positionIds = inputs.get(POSITION_IDS);
    this.logits = logits;
    this.pastNames = List.copyOf(pastNames);
    this.presentNames = List.copyOf(presentNames);
    this.cacheType = cacheType;
    this.cacheHeads = cacheHeads;
    this.headSize = headSize;
    this.vocabularySize = logits.dimension(2);
  }

  /**
   * Whether the model has key/value cache inputs (past_N or past_key_values.N.key|value): a decoder
   * for generate(), whatever else its layout says (read by {@link #of}).
   */
  public static boolean hasCacheInputs(ModelSignature signature) {
    return signature.inputs().stream().anyMatch(input -> COMBINED_PAST.matcher(input.name()).matches()
        || KEY_VALUE_PAST.matcher(input.name()).matches());
  }

  /**
   * Whether the model packages ONNX Runtime's decode loop (GreedySearch, Sampling or BeamSearch, as
   * convert_generation writes them): inputs input_ids and max_length, output sequences.
   */
  public static boolean isPackagedSearch(ModelSignature signature) {
    return signature.inputs().stream().anyMatch(input -> input.name().equals(INPUT_IDS))
        && signature.inputs().stream().anyMatch(input -> input.name().equals("max_length"))
        && signature.outputs().stream().anyMatch(output -> output.name().equals("sequences"));
  }

  /** Whether generate() runs the model: a decoder with a cache, or a packaged decode loop. */
  public static boolean isGenerative(ModelSignature signature) {
    return hasCacheInputs(signature) || isPackagedSearch(signature);
  }

  /**
   * Reads the layout of model {@code modelName} from its signature.
   *
   * @throws IllegalArgumentException naming the model, the tensor, what it is and what generate() needs
   */
  public static DecoderLayout of(String modelName, ModelSignature signature) {
    Map<String, TensorSpec> inputs = new LinkedHashMap<>();
    signature.inputs().forEach(input -> inputs.put(input.name(), input));
    Map<String, TensorSpec> outputs = new LinkedHashMap<>();
    signature.outputs().forEach(output -> outputs.put(output.name(), output));

    TreeMap<Integer, List<String>> combined = new TreeMap<>();
    TreeMap<Integer, String[]> keyValue = new TreeMap<>();
    List<String> others = new ArrayList<>();
    for (TensorSpec input : signature.inputs()) {
      Matcher one = COMBINED_PAST.matcher(input.name());
      Matcher two = KEY_VALUE_PAST.matcher(input.name());
      if (one.matches()) {
        combined.put(layer(modelName, input.name(), one.group(1)), List.of(input.name()));
      } else if (two.matches()) {
        String[] pair = keyValue.computeIfAbsent(layer(modelName, input.name(), two.group(1)), layer -> new String[2]);
        pair[two.group(2).equals("key") ? 0 : 1] = input.name();
      } else if (!input.name().equals(INPUT_IDS) && !input.name().equals(ATTENTION_MASK)
          && !input.name().equals(POSITION_IDS)) {
        others.add(input.name());
      }
    }
    if (combined.isEmpty() && keyValue.isEmpty()) {
      throw new IllegalArgumentException("Model '" + modelName + "' has no key/value cache inputs (past_N, or"
          + " past_key_values.N.key and .value); its inputs are " + names(signature.inputs()) + ". generate() needs a"
          + " decoder exported with its cache: Optimum's --task text-generation-with-past, ONNX Runtime GenAI's model"
          + " builder, or onnxruntime.transformers' GPT-2 export");
    }
    if (!combined.isEmpty() && !keyValue.isEmpty()) {
      throw new IllegalArgumentException("Model '" + modelName + "' mixes past_N inputs with past_key_values.N.key/"
          + ".value inputs; generate() reads one layout or the other. Export the model again");
    }
    if (!others.isEmpty()) {
      throw new IllegalArgumentException("Model '" + modelName + "' has input(s) " + others + " that generate() does"
          + " not feed (it feeds input_ids, attention_mask, position_ids and the cache). A merged decoder's"
          + " use_cache_branch or a shared buffer's past_sequence_length are not supported: export the decoder with"
          + " its cache and without them");
    }
    Style style = combined.isEmpty() ? Style.KEY_VALUE : Style.COMBINED;
    int layers = style == Style.COMBINED ? combined.size() : keyValue.size();
    int lastLayer = style == Style.COMBINED ? combined.lastKey() : keyValue.lastKey();
    if (lastLayer != layers - 1) {
      throw new IllegalArgumentException("Model '" + modelName + "' has cache inputs for " + layers + " layers"
          + " numbered up to " + lastLayer + ": layers must be numbered 0 to " + (layers - 1) + " without gaps");
    }

    TensorSpec inputIds = required(modelName, inputs, INPUT_IDS, "the prompt's token ids");
    integerMatrix(modelName, inputIds);
    TensorSpec mask = required(modelName, inputs, ATTENTION_MASK, "which tokens are padding");
    integerMatrix(modelName, mask);
    if (inputs.containsKey(POSITION_IDS)) {
      integerMatrix(modelName, inputs.get(POSITION_IDS));
    }
    TensorSpec logits = outputs.get(LOGITS);
    if (logits == null) {
      throw new IllegalArgumentException("Model '" + modelName + "' has no output named 'logits'; its outputs are "
          + names(signature.outputs()) + ". generate() reads the next token's scores from 'logits' [batch, sequence,"
          + " vocabulary]");
    }
    if (logits.rank() != 3 || logits.dimension(2) <= 0 || logits.dimension(2) > MAX_VOCABULARY
        || !(logits.onnxTypeName().equals("FLOAT") || logits.onnxTypeName().equals("FLOAT16"))) {
      throw new IllegalArgumentException("Model '" + modelName + "' output 'logits' is " + describe(logits)
          + "; generate() needs float or float16 [batch, sequence, vocabulary] with a fixed vocabulary size of at"
          + " most " + MAX_VOCABULARY + " tokens");
    }

    List<List<String>> pastNames = new ArrayList<>();
    List<List<String>> presentNames = new ArrayList<>();
    String cacheType = null;
    long heads = -1;
    long headSize = -1;
    for (int layer = 0; layer < layers; layer++) {
      List<String> past;
      List<String> present;
      if (style == Style.COMBINED) {
        past = combined.get(layer);
        present = List.of("present_" + layer);
      } else {
        String[] pair = keyValue.get(layer);
        if (pair[0] == null || pair[1] == null) {
          throw new IllegalArgumentException("Model '" + modelName + "' layer " + layer + " has only its past_key_values."
              + layer + "." + (pair[0] == null ? "value" : "key") + " input; every layer needs a key and a value");
        }
        past = List.of(pair[0], pair[1]);
        present = List.of("present." + layer + ".key", "present." + layer + ".value");
      }
      for (int i = 0; i < past.size(); i++) {
        TensorSpec in = inputs.get(past.get(i));
        TensorSpec out = outputs.get(present.get(i));
        if (out == null) {
          throw new IllegalArgumentException("Model '" + modelName + "' takes cache input '" + in.name()
              + "' but has no output '" + present.get(i) + "' to give the next step's cache");
        }
        int rank = style == Style.COMBINED ? 5 : 4;
        int headsAt = style == Style.COMBINED ? 2 : 1;
        if (in.rank() != rank || out.rank() != rank
            || (style == Style.COMBINED && in.dimension(0) != 2)
            || in.dimension(headsAt) <= 0 || in.dimension(rank - 1) <= 0
            || !in.onnxTypeName().equals(out.onnxTypeName())
            || !(in.onnxTypeName().equals("FLOAT") || in.onnxTypeName().equals("FLOAT16"))) {
          throw new IllegalArgumentException("Model '" + modelName + "' cache input '" + in.name() + "' is "
              + describe(in) + " and output '" + out.name() + "' is " + describe(out) + "; generate() needs float or"
              + " float16 " + (style == Style.COMBINED ? "[2, batch, heads, past, head size]"
                  : "[batch, key/value heads, past, head size]") + " with fixed heads and head size, the same type for"
              + " both");
        }
        if (cacheType == null) {
          cacheType = in.onnxTypeName();
          heads = in.dimension(headsAt);
          headSize = in.dimension(rank - 1);
        } else if (!cacheType.equals(in.onnxTypeName()) || heads != in.dimension(headsAt)
            || headSize != in.dimension(rank - 1)) {
          throw new IllegalArgumentException("Model '" + modelName + "' cache input '" + in.name() + "' is "
              + describe(in) + ", unlike the first layer's (" + cacheType.toLowerCase() + ", " + heads + " heads of "
              + headSize + "): generate() needs one cache shape for every layer");
        }
      }
      pastNames.add(past);
      presentNames.add(present);
    }
    return new DecoderLayout(modelName, style, inputs, logits, pastNames, presentNames, cacheType, heads, headSize);
  }

  private static int layer(String modelName, String name, String digits) {
    // Digits from a file: bounded before they index or size anything.
    if (digits.length() > 4 || Integer.parseInt(digits) >= MAX_LAYERS) {
      throw new IllegalArgumentException("Model '" + modelName + "' has cache input '" + name + "', past the "
          + MAX_LAYERS + " layers generate() takes");
    }
    return Integer.parseInt(digits);
  }

  private static TensorSpec required(String modelName, Map<String, TensorSpec> inputs, String name, String what) {
    TensorSpec spec = inputs.get(name);
    if (spec == null) {
      throw new IllegalArgumentException("Model '" + modelName + "' has no input named '" + name + "' (" + what
          + "); its inputs are " + inputs.keySet() + ". generate() feeds input_ids, attention_mask, the cache and,"
          + " when the model has it, position_ids");
    }
    return spec;
  }

  private static void integerMatrix(String modelName, TensorSpec spec) {
    if (spec.rank() != 2 || !(spec.onnxTypeName().equals("INT32") || spec.onnxTypeName().equals("INT64"))) {
      throw new IllegalArgumentException("Model '" + modelName + "' input '" + spec.name() + "' is " + describe(spec)
          + "; generate() feeds it as int32 or int64 [batch, sequence]");
    }
  }

  private static String describe(TensorSpec spec) {
    return spec.onnxTypeName().toLowerCase() + spec.shapeString();
  }

  private static List<String> names(List<TensorSpec> specs) {
    List<String> names = new ArrayList<>();
    specs.forEach(spec -> names.add(spec.name()));
    return names;
  }

  public String modelName() {
    return modelName;
  }

  public Style style() {
    return style;
  }

  public int layers() {
    return pastNames.size();
  }

  /** Layer {@code layer}'s cache inputs: one when combined, key then value otherwise. */
  public List<String> pastNames(int layer) {
    return pastNames.get(layer);
  }

  /** Layer {@code layer}'s cache outputs, in the order of {@link #pastNames(int)}. */
  public List<String> presentNames(int layer) {
    return presentNames.get(layer);
  }

  public TensorSpec inputIds() {
    return inputIds;
  }

  public TensorSpec attentionMask() {
    return attentionMask;
  }

  /** The position_ids input, or null when the model computes positions itself. */
  public TensorSpec positionIds() {
    return positionIds;
  }

  public TensorSpec logits() {
    return logits;
  }

  /** FLOAT or FLOAT16 (ONNX Runtime's names). */
  public String cacheType() {
    return cacheType;
  }

  /** Heads of the cache: the key/value heads under grouped-query attention. */
  public long cacheHeads() {
    return cacheHeads;
  }

  public long headSize() {
    return headSize;
  }

  public long vocabularySize() {
    return vocabularySize;
  }

  /** The cache's shape for {@code batch} rows of {@code past} tokens. */
  public long[] cacheShape(int batch, int past) {
    return style == Style.COMBINED ? new long[] {2, batch, cacheHeads, past, headSize}
        : new long[] {batch, cacheHeads, past, headSize};
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof DecoderLayout)) {
      return false;
    }
    DecoderLayout that = (DecoderLayout) other;
    return modelName.equals(that.modelName) && style == that.style && pastNames.equals(that.pastNames)
        && presentNames.equals(that.presentNames) && cacheType.equals(that.cacheType)
        && cacheHeads == that.cacheHeads && headSize == that.headSize && vocabularySize == that.vocabularySize
        && Objects.equals(positionIds, that.positionIds);
  }

  @Override
  public int hashCode() {
    return Objects.hash(modelName, style, pastNames, cacheType, cacheHeads, headSize, vocabularySize);
  }

  @Override
  public String toString() {
    return modelName + ": " + style.name().toLowerCase() + " cache, " + layers() + " layers of " + cacheHeads
        + " heads of " + headSize + " (" + cacheType.toLowerCase() + "), vocabulary " + vocabularySize
        + (positionIds == null ? ", no position_ids" : "");
  }
}
