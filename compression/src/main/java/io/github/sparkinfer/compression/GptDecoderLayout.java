package io.github.sparkinfer.compression;

import static io.github.sparkinfer.compression.GenerationGraph.ATTENTION_MASK;
import static io.github.sparkinfer.compression.GenerationGraph.INPUT_IDS;
import static io.github.sparkinfer.compression.GenerationGraph.LOGITS;
import static io.github.sparkinfer.compression.GenerationGraph.POSITION_IDS;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.SparseTensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The checked layout of a decoder that {@link GenerationGraph} wraps: its layer count, cache shape,
 * vocabulary and cache type, read from a graph that passed every check of the GPT subgraph of
 * {@code com.microsoft:GreedySearch} / {@code Sampling} (described on {@link GenerationGraph}).
 *
 * <p>Kept apart from {@link GenerationGraph} so that the wrapping reads one concept: here, what a
 * decoder must be and why it is refused; there, how the accepted one becomes the operator's model.
 * Checking everything here, naming the model and the tensor, is the point: ONNX Runtime would refuse
 * the wrapped model only at load time, with messages that name neither.
 */
final class GptDecoderLayout {
  // More layers than any published decoder has: a bound before anything is sized by the count.
  static final int MAX_LAYERS = 1024;
  // Vocabularies of published decoders reach about 256 k tokens.
  static final long MAX_VOCABULARY = 1L << 24;
  // ONNX Runtime keeps heads and head size in an int; real models stay far below this.
  static final long MAX_HEAD_DIMENSION = 1L << 16;

  final int layers;
  final long heads;
  final long headSize;
  final long vocabularySize;
  final OnnxElementType cacheType;

  private GptDecoderLayout(int layers, long heads, long headSize, long vocabularySize,
      OnnxElementType cacheType) {
    this.layers = layers;
    this.heads = heads;
    this.headSize = headSize;
    this.vocabularySize = vocabularySize;
    this.cacheType = cacheType;
  }

  /**
   * Checks that {@code graph} (of model {@code modelName}) is in the GPT-2 layout the generation
   * operators take.
   *
   * @throws IllegalArgumentException naming the model, the tensor, what it is and what is needed
   */
  static GptDecoderLayout of(String modelName, GraphProto graph) {
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
    return new GptDecoderLayout(layers, heads, headSize, vocabulary, type);
  }

  /** Names of the dense and sparse initializers; shared with the wrapping, which moves some out. */
  static Set<String> initializerNames(GraphProto graph) {
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

  private static boolean hasRank(TensorDeclaration tensor, int rank) {
    return tensor.isShapeKnown() && tensor.dimensions().size() == rank;
  }

  private static boolean isFixed(TensorDeclaration tensor, int axis, long low, long high) {
    Dimension dimension = tensor.dimensions().get(axis);
    return dimension.isFixed() && dimension.size() >= low && dimension.size() <= high;
  }

  private static String summary(List<String> names) {
    if (names.size() <= 5) {
      return names.toString();
    }
    return "[" + String.join(", ", names.subList(0, 4)) + ", .., " + names.get(names.size() - 1) + "]";
  }
}
