package io.github.sparkinfer.spark.generate;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import io.github.sparkinfer.compression.GenerationGraph;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelRun;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.batch.ExecutorSessions;
import io.github.sparkinfer.spark.batch.PredictionMetrics;
import io.github.sparkinfer.spark.registry.CompressedModels;
import java.io.IOException;
import java.nio.IntBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.function.Supplier;
import org.apache.hadoop.conf.Configuration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Greedy decoding inside one ONNX Runtime run: the decoder wrapped into ONNX Runtime's
 * {@code com.microsoft:GreedySearch} ({@link GenerationGraph}), so on a GPU the cache stays in device
 * memory for the whole loop and only the prompts go in and the tokens come out (ONNX Runtime's Java API
 * cannot keep a tensor on the device between runs, docs/design/generate.md). The operator takes one
 * end token, which is also its padding (it finds positions where input_ids is not the padding), and
 * applies the repetition penalty to the padding too; so it runs greedy decoding of the GPT-2 layout
 * with exactly one stop token, no stop strings and no penalty ({@link #whyNot}), and a batch with a
 * prompt that holds the stop token goes through the Java loop instead (a WARN, once per task).
 */
final class GraphDecoding implements BatchDecoder {
  private static final Logger LOG = LoggerFactory.getLogger(GraphDecoding.class);

  /** ONNX Runtime's bound on GreedySearch's max_length. */
  static final int MAX_LENGTH = 4096;

  /** Bumped when the wrapped graph changes, so that files made by an older version are not reused. */
  static final int VERSION = 1;

  private static final ConcurrentMap<String, Path> WRAPPED = new ConcurrentHashMap<>();

  private final LoadedModel model;
  private final String modelName;
  private final long vocabularySize;
  private final int stopToken;
  /** The operator's padding: positions are where input_ids is not it. */
  private final int padToken;
  private final PredictionMetrics metrics;
  /** The Java loop for batches the operator cannot take; null for a model that packages its own loop. */
  private final Supplier<BatchDecoder> javaLoop;
  private BatchDecoder fallback;
  private boolean warned;
  /** Set by the caller around a run that must hold the device alone (a retry after running out of memory). */
  boolean runAlone;

  /** The decoder wrapped here into GreedySearch: it ends rows at {@code stopToken} and pads with it. */
  GraphDecoding(LoadedModel model, DecoderLayout layout, int stopToken, PredictionMetrics metrics,
      Supplier<BatchDecoder> javaLoop) {
    this(model, layout.modelName(), layout.vocabularySize(), stopToken, stopToken, metrics, javaLoop);
  }

  GraphDecoding(LoadedModel model, String modelName, long vocabularySize, int stopToken, int padToken,
      PredictionMetrics metrics, Supplier<BatchDecoder> javaLoop) {
    this.model = model;
    this.modelName = modelName;
    this.vocabularySize = vocabularySize;
    this.stopToken = stopToken;
    this.padToken = padToken;
    this.metrics = metrics;
    this.javaLoop = javaLoop;
  }

  /** The inputs a packaged GreedySearch, Sampling or BeamSearch model may declare; generate() feeds each. */
  static final java.util.List<String> PACKAGED_INPUTS = java.util.List.of(GenerationGraph.INPUT_IDS,
      GenerationGraph.MAX_LENGTH, GenerationGraph.MIN_LENGTH, "num_beams", "num_return_sequences", "length_penalty",
      GenerationGraph.REPETITION_PENALTY, GenerationGraph.ATTENTION_MASK, GenerationGraph.SEED);

  /** Why the decode loop cannot run inside ONNX Runtime for this model and these options, or null when it can. */
  static String whyNot(DecoderLayout layout, GenerationOptions options, int stopStrings) {
    if (layout.style() != DecoderLayout.Style.COMBINED || layout.positionIds() == null
        || !layout.inputIds().onnxTypeName().equals("INT32") || !layout.attentionMask().onnxTypeName().equals("INT32")
        || !layout.positionIds().onnxTypeName().equals("INT32")) {
      return "ONNX Runtime's GreedySearch takes decoders in the GPT-2 layout of onnxruntime.transformers (int32"
          + " input_ids, position_ids and attention_mask, past_N), and this one is " + layout;
    }
    if (!options.isGreedy() || options.numBeams() > 1) {
      return "the options sample or search beams; the loop inside ONNX Runtime is greedy";
    }
    if (options.stopTokenIds().length != 1) {
      return "it ends rows at exactly one stop token, and the options name " + options.stopTokenIds().length;
    }
    if (stopStrings > 0) {
      return "stop strings are checked in Java after each token";
    }
    if (options.maxNewTokens() >= MAX_LENGTH) {
      return "ONNX Runtime's GreedySearch decodes at most " + MAX_LENGTH + " tokens of prompt and new tokens together,"
          + " and maxNewTokens is " + options.maxNewTokens();
    }
    if (options.repetitionPenalty() != 1) {
      return "its repetition penalty also counts the padding";
    }
    return null;
  }

  /** The wrapped model's source: a local file made at most once per JVM, content and stop token. */
  static ModelSource source(ModelSource source, int stopToken, Configuration configuration) {
    Path local = ModelCache.shared().localFile(source, configuration);
    // Made again when the cache deleted it with the local copy (an evicted version).
    Path wrapped = WRAPPED.compute(local + "#" + stopToken,
        (key, made) -> made != null && Files.isRegularFile(made) ? made : write(source, local, stopToken));
    return source.withUri(wrapped.toUri().toString());
  }

  private static Path write(ModelSource source, Path local, int stopToken) {
    try {
      // Beside the local copy: a decoder's external-data files are named relative to it.
      Path target = local.resolveSibling(CompressedModels.contentHash(local) + "-greedy-" + stopToken + "-v" + VERSION
          + ".onnx");
      if (Files.isRegularFile(target)) {
        return target;
      }
      OnnxModel wrapped = GenerationGraph.of(source.name(), OnnxModel.read(local)).greedySearch(stopToken, stopToken);
      Path temporary = target.resolveSibling(target.getFileName() + "." + UUID.randomUUID() + ".tmp");
      try {
        wrapped.writeTo(temporary);
        Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } finally {
        Files.deleteIfExists(temporary);
      }
      return target;
    } catch (IOException | RuntimeException e) {
      throw new PredictionException("Cannot wrap model '" + source.name() + "' (" + source.uri() + ") into ONNX"
          + " Runtime's GreedySearch: " + e.getMessage() + ". Set spark.sparkinfer.model." + source.name()
          + ".generate.decodeLoop=java to decode in Java", e);
    }
  }

  @Override
  public long vocabularySize() {
    return vocabularySize;
  }

  @Override
  public String modelName() {
    return modelName;
  }

  @Override
  public DecodeLoop.Generation[] generate(int[][] prompts, GenerationOptions options, int javaLoopPadToken,
      DecodeLoop.StopCheck stopCheck) throws OrtException {
    int longest = 0;
    boolean holdsStop = false;
    for (int[] prompt : prompts) {
      longest = Math.max(longest, prompt.length);
      for (int token : prompt) {
        holdsStop |= token == padToken;
      }
    }
    if (javaLoop == null && holdsStop) {
      // TextGenerator refuses such prompts as row errors before they get here.
      throw new IllegalStateException("A prompt of model '" + modelName + "' holds the padding token " + padToken);
    }
    if (holdsStop || (long) longest + options.maxNewTokens() > MAX_LENGTH) {
      if (!warned) {
        warned = true;
        LOG.warn("Model '{}': a batch goes through the Java decode loop instead of ONNX Runtime's GreedySearch: {}."
            + " Further such batches of this task are not logged", modelName(), holdsStop
            ? "a prompt holds the stop token " + padToken + ", which the operator also pads with"
            : "prompt and new tokens are more than the operator's " + MAX_LENGTH);
      }
      metrics.decodeFallbackBatches.add(1);
      if (fallback == null) {
        fallback = javaLoop.get();
      }
      return fallback.generate(prompts, options, javaLoopPadToken, stopCheck);
    }
    int batch = prompts.length;
    int[] ids = new int[batch * longest];
    int[] mask = new int[batch * longest];
    for (int row = 0; row < batch; row++) {
      int offset = longest - prompts[row].length;
      for (int i = 0; i < longest; i++) {
        boolean real = i >= offset;
        ids[row * longest + i] = real ? prompts[row][i - offset] : padToken;
        mask[row * longest + i] = real ? 1 : 0;
      }
    }
    int maxLength = longest + options.maxNewTokens();
    OrtEnvironment environment = io.github.sparkinfer.device.OrtEnvironments.get();
    Map<String, OnnxTensor> inputs = new HashMap<>();
    try {
      Set<String> declared = model.signature().inputs().stream().map(io.github.sparkinfer.device.TensorSpec::name)
          .collect(java.util.stream.Collectors.toSet());
      inputs.put(GenerationGraph.INPUT_IDS, OnnxTensor.createTensor(environment, IntBuffer.wrap(ids),
          new long[] {batch, longest}));
      inputs.put(GenerationGraph.MAX_LENGTH, OnnxTensor.createTensor(environment, new int[] {maxLength}));
      inputs.put(GenerationGraph.MIN_LENGTH, OnnxTensor.createTensor(environment, new int[] {0}));
      inputs.put(GenerationGraph.REPETITION_PENALTY, OnnxTensor.createTensor(environment,
          new float[] {(float) options.repetitionPenalty()}));
      inputs.put(GenerationGraph.ATTENTION_MASK, OnnxTensor.createTensor(environment, IntBuffer.wrap(mask),
          new long[] {batch, longest}));
      inputs.put("num_beams", OnnxTensor.createTensor(environment, new int[] {options.numBeams()}));
      inputs.put("num_return_sequences", OnnxTensor.createTensor(environment, new int[] {1}));
      inputs.put("length_penalty", OnnxTensor.createTensor(environment, new float[] {1f}));
      inputs.put(GenerationGraph.SEED, OnnxTensor.createTensor(environment, new int[] {(int) options.seed()}));
      // Only what the model declares: a packaged model names the inputs its converter kept.
      inputs.entrySet().removeIf(entry -> {
        if (!declared.contains(entry.getKey())) {
          entry.getValue().close();
          return true;
        }
        return false;
      });
      try (ModelRun run = ExecutorSessions.run(model, inputs, Set.of(GenerationGraph.SEQUENCES), Map.of(), metrics,
          runAlone)) {
        OnnxTensor sequences = (OnnxTensor) run.result().get(GenerationGraph.SEQUENCES).orElseThrow();
        long[] shape = sequences.getInfo().getShape();
        // The operator's output, checked before it is indexed: [batch, at most max_length], or BeamSearch's
        // [batch, sequences per row (the first is the best), at most max_length].
        int width = (int) shape[shape.length - 1];
        long perRow = shape.length == 3 ? shape[1] : 1;
        if (shape.length < 2 || shape.length > 3 || shape[0] != batch || perRow < 1 || width < longest || width > maxLength) {
          throw new IllegalStateException("ONNX Runtime's decode loop in model '" + modelName + "' returned sequences"
              + " of shape " + java.util.Arrays.toString(shape) + " for " + batch + " prompts of " + longest
              + " tokens and max_length " + maxLength);
        }
        return generations(sequences.getIntBuffer(), batch, longest, width, (int) perRow);
      }
    } finally {
      inputs.values().forEach(OnnxTensor::close);
    }
  }

  /** Each row's new tokens: after the prompt's columns up to the first stop token (written as padding). */
  private DecodeLoop.Generation[] generations(IntBuffer sequences, int batch, int longest, int width, int perRow) {
    DecodeLoop.Generation[] generations = new DecodeLoop.Generation[batch];
    for (int row = 0; row < batch; row++) {
      int start = row * perRow * width;
      int end = longest;
      // A row ends at its stop token, written as padding (the operator pads finished rows).
      while (end < width && sequences.get(start + end) != stopToken && sequences.get(start + end) != padToken) {
        end++;
      }
      int[] tokens = new int[end - longest];
      for (int i = 0; i < tokens.length; i++) {
        tokens[i] = sequences.get(start + longest + i);
      }
      // Columns after every row has ended are never written: the first stop token is where a row ended.
      generations[row] = new DecodeLoop.Generation(tokens, end < width ? "stop" : "length");
    }
    return generations;
  }
}
