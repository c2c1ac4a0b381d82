package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A decoder-only model in the GPT-2 layout of {@code onnxruntime.transformers} wrapped into a model
 * whose single node is ONNX Runtime's contrib operator {@code com.microsoft:GreedySearch} or
 * {@code com.microsoft:Sampling} with the decoder as its {@code decoder} graph, so that the whole
 * decoding loop, cache included, runs inside one {@code run} call (on a GPU: without a copy of the
 * cache to the host per token).
 *
 * <p>The decoder must be what the operator's GPT subgraph accepts: inputs exactly {@code input_ids},
 * {@code position_ids}, {@code attention_mask} (int32 [batch, sequence], [batch, total]) and
 * {@code past_0..past_{L-1}} (float or float16 [2, batch, heads, past, head size], heads and head size
 * fixed), outputs exactly {@code logits} ([batch, sequence, vocabulary], vocabulary fixed, the cache's
 * type) and {@code present_0..present_{L-1}}. Anything else is refused here, naming the model and the
 * tensor, rather than by ONNX Runtime when the wrapped model is loaded. The CPU kernels run float
 * decoders only; float16 ones need the CUDA provider.
 *
 * <p>The wrapped model takes {@link #INPUT_IDS} int32 [batch, sequence] (prompts padded on the left),
 * {@link #MAX_LENGTH} int32 [1] (prompt columns included, at most 4096), {@link #MIN_LENGTH} int32 [1]
 * (the end token is blocked while the padded sequence is shorter), {@link #REPETITION_PENALTY} float
 * [1] (1 for none; it also counts the prompt's and the padding's tokens) and {@link #ATTENTION_MASK}
 * int32 [batch, sequence] (0 on padding), and gives {@link #SEQUENCES} int32 [batch, max_length]: the
 * padded prompt, then the new tokens. What the operator does with them, read from its sources:
 * <ul>
 *   <li>positions come from the tokens, not the mask: a token equal to the pad token gets position 0
 *       and is not counted, so a prompt must not contain the pad token (GPT-2 exports often use
 *       pad = bos = eos: leave the bos out of the prompt or pick another pad token);
 *   <li>the end token is written as the pad token, and so is every token of a row after it;
 *   <li>when every row has ended before {@code max_length}, the loop stops and the columns after the
 *       last step are not written (their values are undefined): read a row's new tokens up to its
 *       first pad token.
 * </ul>
 *
 * <p>Large initializers of the decoder are moved to the outer graph, as {@code convert_generation.py}
 * does; small ones (shapes, axes) stay in the decoder, where its optimizer sees them as constants.
 * Tensors stored as external data keep their file references: write the wrapped model beside the
 * decoder's data files.
 */
public final class GenerationGraph {
  public static final String INPUT_IDS = "input_ids";
  public static final String MAX_LENGTH = "max_length";
  public static final String MIN_LENGTH = "min_length";
  public static final String REPETITION_PENALTY = "repetition_penalty";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String SEQUENCES = "sequences";
  /** Sampling's seed, int32 [1]. */
  public static final String SEED = "seed";

  static final String POSITION_IDS = "position_ids";
  static final String LOGITS = "logits";
  static final String MICROSOFT_DOMAIN = "com.microsoft";

  // Kept here as well as in GptDecoderLayout, where the check lives: tests bound their models by it.
  static final int MAX_LAYERS = GptDecoderLayout.MAX_LAYERS;
  // convert_generation.py's threshold: initializers from this many elements up leave the decoder.
  static final long MOVED_INITIALIZER_ELEMENTS = 1024;

  private final String modelName;
  private final ModelProto decoder;
  // The checks of what the operators accept live in GptDecoderLayout; this class only wraps.
  private final GptDecoderLayout layout;

  private GenerationGraph(String modelName, ModelProto decoder, GptDecoderLayout layout) {
    this.modelName = modelName;
    this.decoder = decoder;
    this.layout = layout;
  }

  /**
   * Checks that {@code decoder} (model {@code modelName}) is in the GPT-2 layout the generation
   * operators take.
   *
   * @throws IllegalArgumentException naming the model, the tensor, what it is and what is needed
   */
  public static GenerationGraph of(String modelName, OnnxModel decoder) {
    Objects.requireNonNull(modelName, "modelName");
    Objects.requireNonNull(decoder, "decoder");
    ModelProto model = decoder.proto();
    return new GenerationGraph(modelName, model, GptDecoderLayout.of(modelName, model.getGraph()));
  }

  public int layerCount() {
    return layout.layers;
  }

  public long heads() {
    return layout.heads;
  }

  public long headSize() {
    return layout.headSize;
  }

  public long vocabularySize() {
    return layout.vocabularySize;
  }

  /** FLOAT or FLOAT16: the type of the logits and the cache; ONNX Runtime's CPU kernels run FLOAT only. */
  public OnnxElementType cacheType() {
    return layout.cacheType;
  }

  /**
   * The decoder wrapped into a {@code com.microsoft:GreedySearch} model (inputs and output in the
   * class description).
   *
   * @param eosTokenId the token that ends a row
   * @param padTokenId the token of the left padding, and of a row's columns after its end
   * @throws IllegalArgumentException when a token id is outside the vocabulary
   */
  public OnnxModel greedySearch(int eosTokenId, int padTokenId) {
    checkToken("eosTokenId", eosTokenId);
    checkToken("padTokenId", padTokenId);
    List<AttributeProto> attributes = new ArrayList<>();
    attributes.add(Attribute.ofInt("eos_token_id", eosTokenId).proto());
    attributes.add(Attribute.ofInt("pad_token_id", padTokenId).proto());
    // 0: decoder-only (GPT-2); 1 would be encoder-decoder.
    attributes.add(Attribute.ofInt("model_type", 0).proto());
    attributes.add(Attribute.ofInt("no_repeat_ngram_size", 0).proto());
    return wrap("GreedySearch", attributes, List.of());
  }

  /**
   * The decoder wrapped into a {@code com.microsoft:Sampling} model: the inputs of {@link
   * #greedySearch} and {@link #SEED} int32 [1] (equal seeds and inputs give equal tokens). Each step
   * divides the logits by {@code temperature}, keeps the most probable tokens whose probabilities add
   * up to {@code topP} (always the most probable one) and draws from them. The operator has no top-k.
   *
   * @throws IllegalArgumentException when a token id is outside the vocabulary, {@code temperature}
   *     is not a positive finite number or {@code topP} is not in (0, 1]
   */
  public OnnxModel sampling(int eosTokenId, int padTokenId, float temperature, float topP) {
    checkToken("eosTokenId", eosTokenId);
    checkToken("padTokenId", padTokenId);
    if (!(temperature > 0) || Float.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature=" + temperature + " for model '" + modelName + "': pass a"
          + " positive finite number (1 leaves the logits as they are)");
    }
    // The operator's own default top_p is 0, which keeps only the most probable token: always set.
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("topP=" + topP + " for model '" + modelName + "': pass a number in (0, 1]"
          + " (1 keeps every token)");
    }
    List<AttributeProto> attributes = new ArrayList<>();
    attributes.add(Attribute.ofInt("eos_token_id", eosTokenId).proto());
    attributes.add(Attribute.ofInt("pad_token_id", padTokenId).proto());
    attributes.add(Attribute.ofInt("model_type", 0).proto());
    attributes.add(Attribute.ofInt("no_repeat_ngram_size", 0).proto());
    attributes.add(Attribute.ofFloat("temperature", temperature).proto());
    attributes.add(Attribute.ofFloat("top_p", topP).proto());
    attributes.add(Attribute.ofFloat("filter_value", Float.NEGATIVE_INFINITY).proto());
    attributes.add(Attribute.ofInt("min_tokens_to_keep", 1).proto());
    // Presence penalty and the custom top-p rule are left off.
    attributes.add(Attribute.ofFloat("presence_penalty", 0f).proto());
    attributes.add(Attribute.ofInt("custom", 0).proto());
    // Input 7, presence_mask, is skipped by an empty name; input 8 is the seed.
    return wrap("Sampling", attributes, List.of("", SEED));
  }

  /**
   * Builds the outer model: one operator node, the decoder as its graph attribute. {@code extraInputs}
   * are the node's inputs after attention_mask ("" for a skipped one), each non-empty one an int32 [1]
   * graph input.
   */
  private OnnxModel wrap(String operator, List<AttributeProto> attributes, List<String> extraInputs) {
    GraphProto original = decoder.getGraph();
    Set<String> outerNames = new HashSet<>(List.of(INPUT_IDS, MAX_LENGTH, MIN_LENGTH, REPETITION_PENALTY,
        ATTENTION_MASK, SEQUENCES));
    outerNames.addAll(extraInputs);

    GraphProto.Builder subgraph = original.toBuilder().clearInitializer().clearInput().clearOutput();
    List<TensorProto> moved = new ArrayList<>();
    Set<String> movedNames = new HashSet<>();
    for (TensorProto tensor : original.getInitializerList()) {
      if (elementCount(tensor) >= MOVED_INITIALIZER_ELEMENTS && !outerNames.contains(tensor.getName())) {
        moved.add(tensor);
        movedNames.add(tensor.getName());
      } else {
        subgraph.addInitializer(tensor);
      }
    }
    // The operator's GPT subgraph checks inputs and outputs by position: put them in its order.
    Map<String, ValueInfoProto> declared = new HashMap<>();
    original.getInputList().forEach(input -> declared.put(input.getName(), input));
    subgraph.addInput(declared.get(INPUT_IDS)).addInput(declared.get(POSITION_IDS))
        .addInput(declared.get(ATTENTION_MASK));
    for (int layer = 0; layer < layout.layers; layer++) {
      subgraph.addInput(declared.get("past_" + layer));
    }
    // Inputs that were also initializers stay as overridable defaults, unless their tensor moved out.
    Set<String> kept = GptDecoderLayout.initializerNames(subgraph.build());
    for (ValueInfoProto input : original.getInputList()) {
      if (kept.contains(input.getName())) {
        subgraph.addInput(input);
      }
    }
    Map<String, ValueInfoProto> produced = new HashMap<>();
    original.getOutputList().forEach(output -> produced.put(output.getName(), output));
    subgraph.addOutput(produced.get(LOGITS));
    for (int layer = 0; layer < layout.layers; layer++) {
      subgraph.addOutput(produced.get("present_" + layer));
    }
    // A value read from the outer scope needs its type declared inside, or ONNX Runtime refuses the
    // subgraph ("does not have type information set by parent node").
    List<ValueInfoProto> valueInfo = new ArrayList<>();
    for (ValueInfoProto info : original.getValueInfoList()) {
      if (!movedNames.contains(info.getName())) {
        valueInfo.add(info);
      }
    }
    for (TensorProto tensor : moved) {
      valueInfo.add(valueInfo(tensor));
    }
    subgraph.clearValueInfo().addAllValueInfo(valueInfo);

    NodeProto.Builder node = NodeProto.newBuilder().setOpType(operator).setDomain(MICROSOFT_DOMAIN)
        .setName(operator + "_" + modelName)
        // Optional inputs 4 and 5 (vocab_mask, prefix_vocab_mask) are skipped by empty names.
        .addInput(INPUT_IDS).addInput(MAX_LENGTH).addInput(MIN_LENGTH).addInput(REPETITION_PENALTY)
        .addInput("").addInput("").addInput(ATTENTION_MASK);
    extraInputs.forEach(node::addInput);
    node.addOutput(SEQUENCES).addAllAttribute(attributes)
        .addAttribute(AttributeProto.newBuilder().setName("decoder").setType(AttributeProto.AttributeType.GRAPH)
            .setG(subgraph));

    GraphProto.Builder outer = GraphProto.newBuilder().setName(operator + " of " + modelName).addNode(node)
        .addAllInitializer(moved)
        .addInput(OnnxProtos.valueInfo(declaration(INPUT_IDS, OnnxElementType.INT32, "batch_size",
            "sequence_length")))
        .addInput(OnnxProtos.valueInfo(declaration(MAX_LENGTH, OnnxElementType.INT32, 1L)))
        .addInput(OnnxProtos.valueInfo(declaration(MIN_LENGTH, OnnxElementType.INT32, 1L)))
        .addInput(OnnxProtos.valueInfo(declaration(REPETITION_PENALTY, OnnxElementType.FLOAT, 1L)))
        .addInput(OnnxProtos.valueInfo(declaration(ATTENTION_MASK, OnnxElementType.INT32, "batch_size",
            "sequence_length")));
    for (String input : extraInputs) {
      if (!input.isEmpty()) {
        outer.addInput(OnnxProtos.valueInfo(declaration(input, OnnxElementType.INT32, 1L)));
      }
    }
    outer.addOutput(OnnxProtos.valueInfo(declaration(SEQUENCES, OnnxElementType.INT32, "batch_size",
        "max_length")));

    ModelProto.Builder wrapped = decoder.toBuilder().setGraph(outer);
    // IR 4 lets initializers be absent from the graph inputs, which the moved ones are.
    if (wrapped.getIrVersion() < 4) {
      wrapped.setIrVersion(4);
    }
    boolean microsoft = wrapped.getOpsetImportList().stream()
        .anyMatch(opset -> opset.getDomain().equals(MICROSOFT_DOMAIN));
    if (!microsoft) {
      wrapped.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(MICROSOFT_DOMAIN).setVersion(1));
    }
    return new OnnxModel(wrapped.build());
  }

  private void checkToken(String what, int token) {
    long vocabularySize = layout.vocabularySize;
    if (token < 0 || token >= vocabularySize) {
      throw new IllegalArgumentException(what + "=" + token + " is outside model '" + modelName + "''s vocabulary"
          + " of " + vocabularySize + " tokens: pass its token id from the model's config (0 to "
          + (vocabularySize - 1) + ")");
    }
  }

  private static TensorDeclaration declaration(String name, OnnxElementType type, Object... dimensions) {
    List<Dimension> shape = new ArrayList<>();
    for (Object dimension : dimensions) {
      shape.add(Dimension.from(dimension));
    }
    return new TensorDeclaration(name, type, shape, true);
  }

  /** Elements of a tensor from its dimensions; -1 when they are negative or overflow (left in place). */
  private static long elementCount(TensorProto tensor) {
    long count = 1;
    for (long dimension : tensor.getDimsList()) {
      if (dimension < 0) {
        return -1;
      }
      try {
        count = Math.multiplyExact(count, dimension);
      } catch (ArithmeticException e) {
        return -1;
      }
    }
    return count;
  }

  private static ValueInfoProto valueInfo(TensorProto tensor) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    tensor.getDimsList().forEach(dimension -> shape.addDimBuilder().setDimValue(dimension));
    return ValueInfoProto.newBuilder().setName(tensor.getName())
        .setType(TypeProto.newBuilder().setTensorType(
            TypeProto.Tensor.newBuilder().setElemType(tensor.getDataType()).setShape(shape)))
        .build();
  }

  @Override
  public String toString() {
    return "GenerationGraph{model=" + modelName + ", layers=" + layout.layers + ", heads=" + layout.heads
        + ", headSize=" + layout.headSize + ", vocabulary=" + layout.vocabularySize + ", cache=" + layout.cacheType
        + "}";
  }
}
