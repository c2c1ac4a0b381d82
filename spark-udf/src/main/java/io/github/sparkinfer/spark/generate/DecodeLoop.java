package io.github.sparkinfer.spark.generate;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Decoding of a batch of prompts with the model's key/value cache, in a Java loop over ONNX
 * Runtime runs (the CPU path; on a GPU every step would copy the cache over PCIe, see
 * docs/design/generate.md). Prompts are left-padded with the attention mask, positions count real
 * tokens only, and each step feeds one token per row with the previous step's present tensors as
 * the next step's past, without copying them through Java. Each row chooses its tokens with its own
 * {@link NextTokenChooser}; a row stops at a stop token ({@code stop}) or after the most new tokens
 * ({@code length}); the batch ends when every row has stopped.
 *
 * <p>Left padding is what GPT-2-style attention and Optimum exports expect; decoders with ONNX
 * Runtime's GroupQueryAttention read each row's cache from position 0 ({@code seqlens_k} from the
 * mask) and take right padding ({@code leftPadding=false}): the first step reads each row's logits at
 * its own last prompt token, and later steps append to the mask, leaving the padding inside it.
 */
final class DecodeLoop implements BatchDecoder {
  final OrtEnvironment environment;
  final StepRunner runner;
  final DecoderLayout layout;
  final boolean leftPadding;

  /** One step's outputs, held until closed. */
  interface Step extends AutoCloseable {
    java.util.Optional<OnnxValue> get(String name);

    @Override
    void close();
  }

  /** Runs the decoder once (on the executor: through the device's run limit and the model cache's hold). */
  interface StepRunner {
    Step run(Map<String, OnnxTensor> inputs) throws OrtException;
  }

  DecodeLoop(OrtEnvironment environment, OrtSession session, DecoderLayout layout, boolean leftPadding) {
    this(environment, inputs -> {
      OrtSession.Result result = session.run(inputs);
      return new Step() {
        @Override
        public java.util.Optional<OnnxValue> get(String name) {
          return result.get(name);
        }

        @Override
        public void close() {
          result.close();
        }
      };
    }, layout, leftPadding);
  }

  DecodeLoop(OrtEnvironment environment, StepRunner runner, DecoderLayout layout, boolean leftPadding) {
    this.environment = environment;
    this.runner = runner;
    this.layout = layout;
    this.leftPadding = leftPadding;
  }

  @Override
  public long vocabularySize() {
    return layout.vocabularySize();
  }

  @Override
  public String modelName() {
    return layout.modelName();
  }

  /** One row's result: its new tokens (without the stop token) and why it ended. */
  static final class Generation {
    final int[] tokens;
    final String finishReason;

    Generation(int[] tokens, String finishReason) {
      this.tokens = tokens;
      this.finishReason = finishReason;
    }
  }

  /** Whether a row's tokens so far end it (a stop string reached); called after each new token. */
  interface StopCheck {
    boolean reached(int[] prompt, List<Integer> generated);
  }

  /** Each prompt's generation, in the prompts' order. */
  Generation[] generate(int[][] prompts, GenerationOptions options, int padToken) throws OrtException {
    return generate(prompts, options, padToken, null);
  }

  /** As {@link #generate(int[][], GenerationOptions, int)}, a row also ending where {@code stopCheck} says. */
  @Override
  public Generation[] generate(int[][] prompts, GenerationOptions options, int padToken, StopCheck stopCheck)
      throws OrtException {
    if (options.numBeams() > 1) {
      return new BeamSearch(this).generate(prompts, options, padToken, stopCheck);
    }
    return generateBatch(prompts, options, padToken, stopCheck);
  }

  /** A batch's first step: the prompts padded to the longest, with their mask and positions. */
  static final class PaddedPrompts {
    final int longest;
    final long[][] ids;
    final long[][] mask;
    final long[][] positions;
    /** Each row's position of its next token. */
    final long[] nextPosition;

    PaddedPrompts(int[][] prompts, int padToken, boolean leftPadding) {
      int batch = prompts.length;
      int most = 0;
      for (int[] prompt : prompts) {
        most = Math.max(most, prompt.length);
      }
      longest = most;
      mask = new long[batch][longest];
      ids = new long[batch][longest];
      positions = new long[batch][longest];
      nextPosition = new long[batch];
      for (int row = 0; row < batch; row++) {
        // Left padding puts every row's last prompt token in the last column; right padding (GroupQueryAttention
        // reads each row's cache from position 0) leaves the padding after it.
        int offset = leftPadding ? longest - prompts[row].length : 0;
        for (int i = 0; i < longest; i++) {
          boolean real = i >= offset && i < offset + prompts[row].length;
          ids[row][i] = real ? prompts[row][i - offset] : padToken;
          mask[row][i] = real ? 1 : 0;
          positions[row][i] = real ? i - offset : 0;
        }
        nextPosition[row] = prompts[row].length;
      }
    }
  }

  private Generation[] generateBatch(int[][] prompts, GenerationOptions options, int padToken, StopCheck stopCheck)
      throws OrtException {
    int maxNewTokens = options.maxNewTokens();
    int batch = prompts.length;
    PaddedPrompts padded = new PaddedPrompts(prompts, padToken, leftPadding);
    int longest = padded.longest;
    long[][] mask = padded.mask;
    long[][] ids = padded.ids;
    long[][] positions = padded.positions;
    long[] nextPosition = padded.nextPosition;
    List<List<Integer>> generated = new ArrayList<>();
    boolean[] done = new boolean[batch];
    NextTokenChooser[] choosers = new NextTokenChooser[batch];
    NextTokenChooser.Scratch scratch = new NextTokenChooser.Scratch(layout.modelName(), (int) layout.vocabularySize(),
        options);
    for (int row = 0; row < batch; row++) {
      generated.add(new ArrayList<>());
      choosers[row] = new NextTokenChooser(options, prompts[row], scratch);
    }
    Step previous = null;
    // Outside the try: a run that throws (out of memory, retried in halves) must not leak the step's inputs.
    Map<String, OnnxTensor> owned = new HashMap<>();
    try {
      Map<String, OnnxValue> inputs = new HashMap<>();
      for (int layer = 0; layer < layout.layers(); layer++) {
        for (String past : layout.pastNames(layer)) {
          OnnxTensor empty = emptyCache(batch);
          owned.put(past, empty);
          inputs.put(past, empty);
        }
      }
      long[][] stepIds = ids;
      long[][] stepPositions = positions;
      for (int step = 0; step < maxNewTokens; step++) {
        putTokens(inputs, owned, stepIds, mask, stepPositions);
        Step result = runner.run(castInputs(inputs));
        closeAll(owned);
        if (previous != null) {
          previous.close();
        }
        previous = result;
        int[] next = chooseNext(result, choosers, step == 0 ? promptEnds(prompts, longest) : null);
        boolean all = true;
        stepIds = new long[batch][1];
        stepPositions = new long[batch][1];
        for (int row = 0; row < batch; row++) {
          if (!done[row]) {
            if (options.stops(next[row])) {
              done[row] = true;
            } else {
              generated.get(row).add(next[row]);
              choosers[row].remember(next[row]);
              done[row] = stopCheck != null && stopCheck.reached(prompts[row], generated.get(row));
            }
          }
          all &= done[row];
          stepIds[row][0] = done[row] ? padToken : next[row];
          stepPositions[row][0] = nextPosition[row]++;
        }
        if (all) {
          break;
        }
        mask = appendOne(mask);
        inputs.clear();
        for (int layer = 0; layer < layout.layers(); layer++) {
          List<String> past = layout.pastNames(layer);
          List<String> present = layout.presentNames(layer);
          for (int i = 0; i < past.size(); i++) {
            inputs.put(past.get(i), result.get(present.get(i)).orElseThrow());
          }
        }
      }
    } finally {
      closeAll(owned);
      if (previous != null) {
        previous.close();
      }
    }
    Generation[] generations = new Generation[batch];
    for (int row = 0; row < batch; row++) {
      generations[row] = new Generation(generated.get(row).stream().mapToInt(Integer::intValue).toArray(),
          done[row] ? "stop" : "length");
    }
    return generations;
  }

  void putTokens(Map<String, OnnxValue> inputs, Map<String, OnnxTensor> owned, long[][] ids, long[][] mask,
      long[][] positions) throws OrtException {
    put(inputs, owned, DecoderLayout.INPUT_IDS, layout.inputIds().onnxTypeName(), ids);
    put(inputs, owned, DecoderLayout.ATTENTION_MASK, layout.attentionMask().onnxTypeName(), mask);
    if (layout.positionIds() != null) {
      put(inputs, owned, DecoderLayout.POSITION_IDS, layout.positionIds().onnxTypeName(), positions);
    }
  }

  private void put(Map<String, OnnxValue> inputs, Map<String, OnnxTensor> owned, String name, String type,
      long[][] values) throws OrtException {
    OnnxTensor tensor;
    if (type.equals("INT32")) {
      int[][] narrow = new int[values.length][];
      for (int row = 0; row < values.length; row++) {
        narrow[row] = new int[values[row].length];
        for (int i = 0; i < values[row].length; i++) {
          narrow[row][i] = Math.toIntExact(values[row][i]);
        }
      }
      tensor = OnnxTensor.createTensor(environment, narrow);
    } else {
      tensor = OnnxTensor.createTensor(environment, values);
    }
    owned.put(name, tensor);
    inputs.put(name, tensor);
  }

  OnnxTensor emptyCache(int batch) throws OrtException {
    long[] shape = layout.cacheShape(batch, 0);
    ByteBuffer none = ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder());
    return OnnxTensor.createTensor(environment, none, shape,
        layout.cacheType().equals("FLOAT16") ? OnnxJavaType.FLOAT16 : OnnxJavaType.FLOAT);
  }

  /** Where each row's last prompt token is in the first step's columns. */
  int[] promptEnds(int[][] prompts, int longest) {
    int[] ends = new int[prompts.length];
    for (int row = 0; row < prompts.length; row++) {
      ends[row] = leftPadding ? longest - 1 : prompts[row].length - 1;
    }
    return ends;
  }

  /** {@code columns}: the column of each row's logits to read, or null for the last. */
  int[] chooseNext(Step result, NextTokenChooser[] choosers, int[] columns) throws OrtException {
    OnnxTensor logits = (OnnxTensor) result.get(DecoderLayout.LOGITS).orElseThrow();
    long[] shape = logits.getInfo().getShape();
    int vocabulary = (int) layout.vocabularySize();
    // The graph may promise one shape and give another: checked before the values are indexed by it.
    if (shape.length != 3 || shape[0] != choosers.length || shape[2] != vocabulary || shape[1] < 1
        || shape[0] * shape[1] * shape[2] > Integer.MAX_VALUE) {
      throw new IllegalStateException("Model '" + layout.modelName() + "' returned logits of shape "
          + java.util.Arrays.toString(shape) + " for a batch of " + choosers.length + " rows, but its signature says [batch,"
          + " sequence, " + vocabulary + "]. The model's graph does not match its declared outputs: export it again");
    }
    int sequence = (int) shape[1];
    // Upcast from float16 by ONNX Runtime when the model's logits are half precision.
    FloatBuffer values = logits.getFloatBuffer();
    int[] next = new int[choosers.length];
    for (int row = 0; row < choosers.length; row++) {
      int column = columns == null ? sequence - 1 : columns[row];
      if (column >= sequence) {
        throw new IllegalStateException("Model '" + layout.modelName() + "' returned logits for " + sequence
            + " positions, but the prompt step fed " + (column + 1) + " or more. Export the model again");
      }
      next[row] = choosers[row].choose(values, (row * sequence + column) * vocabulary);
    }
    return next;
  }

  @SuppressWarnings("unchecked")
  static Map<String, OnnxTensor> castInputs(Map<String, OnnxValue> inputs) {
    return (Map<String, OnnxTensor>) (Map<String, ?>) inputs;
  }

  static long[][] appendOne(long[][] mask) {
    long[][] grown = new long[mask.length][];
    for (int row = 0; row < mask.length; row++) {
      grown[row] = java.util.Arrays.copyOf(mask[row], mask[row].length + 1);
      grown[row][mask[row].length] = 1;
    }
    return grown;
  }

  static void closeAll(Map<String, OnnxTensor> owned) {
    owned.values().forEach(OnnxTensor::close);
    owned.clear();
  }
}
