package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.SparseTensorProto;
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

  // More layers than any published decoder has: a bound before anything is sized by the count.
  static final int MAX_LAYERS = 1024;
  // Vocabularies of published decoders reach about 256 k tokens.
  static final long MAX_VOCABULARY = 1L << 24;
  // ONNX Runtime keeps heads and head size in an int; real models stay far below this.
  static final long MAX_HEAD_DIMENSION = 1L << 16;
  // convert_generation.py's threshold: initializers from this many elements up leave the decoder.
  static final long MOVED_INITIALIZER_ELEMENTS = 1024;

  private final String modelName;
  private final ModelProto decoder;
  private final int layers;
  private final long heads;
  private final long headSize;
  private final long vocabularySize;
  private final OnnxElementType cacheType;

  private GenerationGraph(String modelName, ModelProto decoder, int layers, long heads, long headSize,
      long vocabularySize, OnnxElementType cacheType) {
    this.modelName = modelName;
    this.decoder = decoder;
    this.layers = layers;
    this.heads = heads;
    this.headSize = headSize;
    this.vocabularySize = vocabularySize;
    this.cacheType = cacheType;
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
    GraphProto graph = model.getGraph();
    if (graph.getNodeCount() == 0) {
      throw new IllegalArgumentException("Model '" + modelName + "' has no graph nodes: not a decoder");
    }
    Set<String> initializers = initializerNames(graph);

    // Fed inputs as ONNX Runtime counts them: those that are also initializers are defaults.
    Map<String, TensorDeclaration> inputs = new HashMap<>();
    List<String> inputNames = new ArrayList<>();
    for (ValueInfoProto input : graph.getInputList()) {
      if (initializers.contains(input.getName())) {
        continue;
      }
      TensorDeclaration declaration = declaration(modelName, "input", input);
      if (inputs.put(input.getName(), declaration) != null) {
        throw new IllegalArgumentException("Model '" + modelName + "' declares input '" + input.getName()
            + "' twice: the file is damaged; export the model again");
      }
      inputNames.add(input.getName());
    }
    Map<String, TensorDeclaration> outputs = new HashMap<>();
    List<String> outputNames = new ArrayList<>();
    for (ValueInfoProto output : graph.getOutputList()) {
      TensorDeclaration declaration = declaration(modelName, "output", output);
      if (outputs.put(output.getName(), declaration) != null) {
        throw new IllegalArgumentException("Model '" + modelName + "' declares output '" + output.getName()
            + "' twice: the file is damaged; export the model again");
      }
      outputNames.add(output.getName());
    }

    // The layer count is the number of past_ inputs, bounded before names are made from it.
    int layers = (int) inputNames.stream().filter(name -> name.startsWith("past_")).count();
    if (layers == 0) {
      throw new IllegalArgumentException("Model '" + modelName + "' has no past_N inputs; its inputs are "
          + inputNames + ". GreedySearch needs a decoder with its cache in onnxruntime.transformers' GPT-2 layout"
          + " (input_ids, position_ids, attention_mask, past_0.. [2, batch, heads, past, head size]): export it"
          + " with onnxruntime.transformers.models.gpt2.convert_to_onnx");
    }
    if (layers > MAX_LAYERS) {
      throw new IllegalArgumentException("Model '" + modelName + "' has " + layers + " past_ inputs, more than the "
          + MAX_LAYERS + " layers accepted here: not a decoder this code can wrap");
    }
    List<String> expectedInputs = new ArrayList<>(List.of(INPUT_IDS, POSITION_IDS, ATTENTION_MASK));
    List<String> expectedOutputs = new ArrayList<>(List.of(LOGITS));
    for (int layer = 0; layer < layers; layer++) {
      expectedInputs.add("past_" + layer);
      expectedOutputs.add("present_" + layer);
    }
    if (!new HashSet<>(inputNames).equals(new HashSet<>(expectedInputs))) {
      throw new IllegalArgumentException("Model '" + modelName + "' has inputs " + inputNames + "; GreedySearch's"
          + " GPT subgraph takes exactly " + summary(expectedInputs) + ". A merged decoder's use_cache_branch, a"
          + " shared buffer's past_sequence_length or past_key_values.N.key/value inputs are not this layout:"
          + " export with onnxruntime.transformers.models.gpt2.convert_to_onnx, without --past_present_share_buffer");
    }
    if (!new HashSet<>(outputNames).equals(new HashSet<>(expectedOutputs))) {
      throw new IllegalArgumentException("Model '" + modelName + "' has outputs " + outputNames + "; GreedySearch's"
          + " GPT subgraph gives exactly " + summary(expectedOutputs) + " for " + layers + " past inputs");
    }

    for (String name : List.of(INPUT_IDS, POSITION_IDS, ATTENTION_MASK)) {
      TensorDeclaration input = inputs.get(name);
      if (input.elementType() != OnnxElementType.INT32 || !hasRank(input, 2)) {
        throw new IllegalArgumentException("Model '" + modelName + "' input '" + name + "' is " + input
            + "; GreedySearch feeds int32 [batch, length]: export the decoder with int32 inputs (as"
            + " onnxruntime.transformers' GPT-2 export does)");
      }
    }
    TensorDeclaration logits = outputs.get(LOGITS);
    OnnxElementType type = logits.elementType();
    if ((type != OnnxElementType.FLOAT && type != OnnxElementType.FLOAT16) || !hasRank(logits, 3)
        || !isFixed(logits, 2, 1, MAX_VOCABULARY)) {
      throw new IllegalArgumentException("Model '" + modelName + "' output 'logits' is " + logits + "; GreedySearch"
          + " needs float or float16 [batch, sequence, vocabulary] with a fixed vocabulary of 1 to "
          + MAX_VOCABULARY + " tokens");
    }
    long vocabulary = logits.dimensions().get(2).size();
    long heads = -1;
    long headSize = -1;
    for (int layer = 0; layer < layers; layer++) {
      TensorDeclaration past = inputs.get("past_" + layer);
      TensorDeclaration present = outputs.get("present_" + layer);
      for (TensorDeclaration cache : List.of(past, present)) {
        if (cache.elementType() != type || !hasRank(cache, 5) || !isFixed(cache, 0, 2, 2)
            || !isFixed(cache, 2, 1, MAX_HEAD_DIMENSION) || !isFixed(cache, 4, 1, MAX_HEAD_DIMENSION)) {
          throw new IllegalArgumentException("Model '" + modelName + "' cache tensor '" + cache.name() + "' is "
              + cache + "; GreedySearch needs " + type + " (the type of logits) [2, batch, heads, length, head"
              + " size] with 2, heads and head size fixed");
        }
        long cacheHeads = cache.dimensions().get(2).size();
        long cacheHeadSize = cache.dimensions().get(4).size();
        if (heads < 0) {
          heads = cacheHeads;
          headSize = cacheHeadSize;
        } else if (heads != cacheHeads || headSize != cacheHeadSize) {
          throw new IllegalArgumentException("Model '" + modelName + "' cache tensor '" + cache.name() + "' is "
              + cache + ", unlike past_0 (" + heads + " heads of " + headSize + "): GreedySearch allocates one"
              + " cache shape for every layer");
        }
      }
    }
    return new GenerationGraph(modelName, model, layers, heads, headSize, vocabulary, type);
  }

  public int layerCount() {
    return layers;
  }

  public long heads() {
    return heads;
  }

  public long headSize() {
    return headSize;
  }

  public long vocabularySize() {
    return vocabularySize;
  }

  /** FLOAT or FLOAT16: the type of the logits and the cache; ONNX Runtime's CPU kernels run FLOAT only. */
  public OnnxElementType cacheType() {
    return cacheType;
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
    for (int layer = 0; layer < layers; layer++) {
      subgraph.addInput(declared.get("past_" + layer));
    }
    // Inputs that were also initializers stay as overridable defaults, unless their tensor moved out.
    Set<String> kept = initializerNames(subgraph.build());
    for (ValueInfoProto input : original.getInputList()) {
      if (kept.contains(input.getName())) {
        subgraph.addInput(input);
      }
    }
    Map<String, ValueInfoProto> produced = new HashMap<>();
    original.getOutputList().forEach(output -> produced.put(output.getName(), output));
    subgraph.addOutput(produced.get(LOGITS));
    for (int layer = 0; layer < layers; layer++) {
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
    if (token < 0 || token >= vocabularySize) {
      throw new IllegalArgumentException(what + "=" + token + " is outside model '" + modelName + "''s vocabulary"
          + " of " + vocabularySize + " tokens: pass its token id from the model's config (0 to "
          + (vocabularySize - 1) + ")");
    }
  }

  private static Set<String> initializerNames(GraphProto graph) {
    Set<String> names = new HashSet<>();
    graph.getInitializerList().forEach(tensor -> names.add(tensor.getName()));
    for (SparseTensorProto sparse : graph.getSparseInitializerList()) {
      names.add(sparse.getValues().getName());
    }
    return names;
  }

  /** The declaration, or a refusal naming the model when the file declares no tensor type. */
  private static TensorDeclaration declaration(String modelName, String what, ValueInfoProto info) {
    try {
      return OnnxProtos.declaration(info);
    } catch (IllegalStateException | IllegalArgumentException e) {
      throw new IllegalArgumentException("Model '" + modelName + "' " + what + " '" + info.getName()
          + "' is not a tensor of a known type (" + e.getMessage() + "): not a decoder GreedySearch can run", e);
    }
  }

  private static TensorDeclaration declaration(String name, OnnxElementType type, Object... dimensions) {
    List<Dimension> shape = new ArrayList<>();
    for (Object dimension : dimensions) {
      shape.add(Dimension.from(dimension));
    }
    return new TensorDeclaration(name, type, shape, true);
  }

  private static boolean hasRank(TensorDeclaration tensor, int rank) {
    return tensor.isShapeKnown() && tensor.dimensions().size() == rank;
  }

  private static boolean isFixed(TensorDeclaration tensor, int axis, long low, long high) {
    Dimension dimension = tensor.dimensions().get(axis);
    return dimension.isFixed() && dimension.size() >= low && dimension.size() <= high;
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

  private static String summary(List<String> names) {
    if (names.size() <= 5) {
      return names.toString();
    }
    return "[" + String.join(", ", names.subList(0, 4)) + ", .., " + names.get(names.size() - 1) + "]";
  }

  @Override
  public String toString() {
    return "GenerationGraph{model=" + modelName + ", layers=" + layers + ", heads=" + heads + ", headSize="
        + headSize + ", vocabulary=" + vocabularySize + ", cache=" + cacheType + "}";
  }
}
