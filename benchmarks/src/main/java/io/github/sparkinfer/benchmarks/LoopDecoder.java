package io.github.sparkinfer.benchmarks;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * A decoder driven by hand, the benchmarks' plain Java loop over ONNX Runtime runs (GenerateBenchmark's
 * variant (b)): left padding with the attention mask, positions counting real tokens, the prompt in one
 * run, then one token per row per run, each run's present tensors fed back as the next run's past. Takes
 * the GPT-2 layout of {@code onnxruntime.transformers} ({@code past_N} / {@code present_N}, [2, batch,
 * heads, length, head size]) and Optimum's ({@code past_key_values.N.key|value} / {@code
 * present.N.key|value}, [batch, heads, length, head size]); int32 or int64 token inputs, with or
 * without {@code position_ids}; fp32 or fp16 cache and logits (ONNX Runtime upcasts fp16 logits to
 * float when they are read).
 *
 * <p>The prompt step returns logits for every position. When a batch's would exceed {@link
 * #maxPrefillValues} values (Java buffers hold at most 2^31), the prompt step runs in row groups padded to
 * the batch's longest prompt and their presents are joined along the batch axis, which gives the same
 * cache as one run. Each step also records, per row, the gap between the best and the second-best
 * logit: GenerateBenchmark uses it to tell fp16 near-ties from real disagreements.
 */
final class LoopDecoder {
  enum Layout { GPT2, OPTIMUM }

  final OrtEnvironment environment;
  final OrtSession session;
  final Layout layout;
  final int layers;
  /** Key/value heads. */
  final long heads;
  final long headSize;
  final long vocabulary;
  final boolean longInputs;
  final boolean halfCache;
  final boolean positions;
  /** Most logits values one prompt step may return before it is split into row groups. */
  long maxPrefillValues = Long.getLong("sparkinfer.benchmark.maxPrefillValues", 1L << 29);

  /** One batch's new tokens and, per row and step, best logit minus second-best. */
  static final class Output {
    final int[][] tokens;
    final float[][] margins;

    Output(int[][] tokens, float[][] margins) {
      this.tokens = tokens;
      this.margins = margins;
    }
  }

  LoopDecoder(OrtEnvironment environment, OrtSession session) throws OrtException {
    this.environment = environment;
    this.session = session;
    Map<String, NodeInfo> inputs = session.getInputInfo();
    if (inputs.containsKey("past_0")) {
      layout = Layout.GPT2;
    } else if (inputs.containsKey("past_key_values.0.key")) {
      layout = Layout.OPTIMUM;
    } else {
      throw new IllegalArgumentException("Neither the GPT-2 layout (past_0) nor Optimum's (past_key_values.0.key):"
          + " inputs " + inputs.keySet());
    }
    int count = 0;
    while (inputs.containsKey(pastName(count, 0))) {
      count++;
    }
    this.layers = count;
    TensorInfo past = (TensorInfo) inputs.get(pastName(0, 0)).getInfo();
    long[] shape = past.getShape();
    this.heads = layout == Layout.GPT2 ? shape[2] : shape[1];
    this.headSize = layout == Layout.GPT2 ? shape[4] : shape[3];
    this.halfCache = past.type == OnnxJavaType.FLOAT16;
    this.longInputs = ((TensorInfo) inputs.get("input_ids").getInfo()).type == OnnxJavaType.INT64;
    this.positions = inputs.containsKey("position_ids");
    long[] logits = ((TensorInfo) session.getOutputInfo().get("logits").getInfo()).getShape();
    this.vocabulary = logits[2];
  }

  /** Layer {@code layer}'s past input: part 0 (GPT-2's combined tensor, or Optimum's key) or 1 (Optimum's value). */
  String pastName(int layer, int part) {
    return layout == Layout.GPT2 ? "past_" + layer : "past_key_values." + layer + (part == 0 ? ".key" : ".value");
  }

  String presentName(int layer, int part) {
    return layout == Layout.GPT2 ? "present_" + layer : "present." + layer + (part == 0 ? ".key" : ".value");
  }

  int parts() {
    return layout == Layout.GPT2 ? 1 : 2;
  }

  String describe() {
    return String.format(java.util.Locale.ROOT, "%s layout, %d layers, %d key/value heads of %d, vocabulary %d, %s"
        + " inputs%s, %s cache", layout == Layout.GPT2 ? "GPT-2 (past_N)" : "Optimum (past_key_values.N.key|value)",
        layers, heads, headSize, vocabulary, longInputs ? "int64" : "int32", positions ? " with position_ids" : "",
        halfCache ? "fp16" : "fp32");
  }

  private long[] cacheShape(int batch, long length) {
    return layout == Layout.GPT2 ? new long[] {2, batch, heads, length, headSize}
        : new long[] {batch, heads, length, headSize};
  }

  private OnnxTensor emptyCache(int batch) throws OrtException {
    return OnnxTensor.createTensor(environment, ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder()),
        cacheShape(batch, 0), halfCache ? OnnxJavaType.FLOAT16 : OnnxJavaType.FLOAT);
  }

  private OnnxTensor tokens(int[] values, long[] shape) throws OrtException {
    if (!longInputs) {
      return OnnxTensor.createTensor(environment, IntBuffer.wrap(values), shape);
    }
    return OnnxTensor.createTensor(environment, LongBuffer.wrap(Arrays.stream(values).asLongStream().toArray()), shape);
  }

  /** Batches of {@code batchSize} of {@code prompts} in their order; tokens in the same order. */
  Output decode(int[][] prompts, int batchSize, int newTokens, int pad) throws OrtException {
    int[][] tokens = new int[prompts.length][];
    float[][] margins = new float[prompts.length][];
    for (int first = 0; first < prompts.length; first += batchSize) {
      Output out = batch(Arrays.copyOfRange(prompts, first, Math.min(prompts.length, first + batchSize)), newTokens,
          pad);
      System.arraycopy(out.tokens, 0, tokens, first, out.tokens.length);
      System.arraycopy(out.margins, 0, margins, first, out.margins.length);
    }
    return new Output(tokens, margins);
  }

  /** One batch, left-padded: the prompt in one run (or row groups), then one token per row per run. */
  Output batch(int[][] prompts, int newTokens, int pad) throws OrtException {
    int size = prompts.length;
    int longest = Arrays.stream(prompts).mapToInt(p -> p.length).max().orElseThrow();
    int maxTotal = longest + newTokens;
    int[] ids = new int[size * longest];
    int[] stepPositions = new int[size * longest];
    int[] nextPosition = new int[size];
    int[] fullMask = new int[size * maxTotal];
    for (int row = 0; row < size; row++) {
      int padding = longest - prompts[row].length;
      for (int column = 0; column < longest; column++) {
        boolean real = column >= padding;
        ids[row * longest + column] = real ? prompts[row][column - padding] : pad;
        stepPositions[row * longest + column] = real ? column - padding : 0;
        fullMask[row * maxTotal + column] = real ? 1 : 0;
      }
      nextPosition[row] = prompts[row].length;
      for (int column = longest; column < maxTotal; column++) {
        fullMask[row * maxTotal + column] = 1;
      }
    }
    int[][] tokens = new int[size][newTokens];
    float[][] margins = new float[size][newTokens];
    List<OnnxTensor> pasts = new ArrayList<>();
    OrtSession.Result previous = null;
    try {
      // The prompt step: whole, or in row groups whose presents are joined along the batch axis.
      int group = (int) Math.max(1, Math.min(size, maxPrefillValues / ((long) longest * vocabulary)));
      List<OrtSession.Result> groups = new ArrayList<>();
      try {
        for (int first = 0; first < size; first += group) {
          int rows = Math.min(group, size - first);
          Map<String, OnnxTensor> inputs = new HashMap<>();
          try {
            int[] mask = new int[rows * longest];
            for (int row = 0; row < rows; row++) {
              System.arraycopy(fullMask, (first + row) * maxTotal, mask, row * longest, longest);
            }
            long[] shape = {rows, longest};
            inputs.put("input_ids", tokens(Arrays.copyOfRange(ids, first * longest, (first + rows) * longest), shape));
            if (positions) {
              inputs.put("position_ids", tokens(Arrays.copyOfRange(stepPositions, first * longest,
                  (first + rows) * longest), shape));
            }
            inputs.put("attention_mask", tokens(mask, shape));
            for (int layer = 0; layer < layers; layer++) {
              for (int part = 0; part < parts(); part++) {
                inputs.put(pastName(layer, part), emptyCache(rows));
              }
            }
            OrtSession.Result result = session.run(inputs);
            groups.add(result);
            choose(result, longest, first, rows, 0, tokens, margins);
          } finally {
            inputs.values().forEach(OnnxTensor::close);
          }
        }
        if (groups.size() == 1) {
          previous = groups.remove(0);
        } else {
          for (int layer = 0; layer < layers; layer++) {
            for (int part = 0; part < parts(); part++) {
              pasts.add(join(groups, presentName(layer, part), size, longest));
            }
          }
        }
      } finally {
        groups.forEach(OrtSession.Result::close);
      }
      int total = longest;
      for (int step = 1; step < newTokens; step++) {
        total++;
        Map<String, OnnxTensor> inputs = new HashMap<>();
        List<OnnxTensor> owned = new ArrayList<>();
        int[] stepIds = new int[size];
        int[] positionIds = new int[size];
        int[] mask = new int[size * total];
        for (int row = 0; row < size; row++) {
          stepIds[row] = tokens[row][step - 1];
          positionIds[row] = nextPosition[row]++;
          System.arraycopy(fullMask, row * maxTotal, mask, row * total, total);
        }
        try {
          owned.add(tokens(stepIds, new long[] {size, 1}));
          inputs.put("input_ids", owned.get(owned.size() - 1));
          if (positions) {
            owned.add(tokens(positionIds, new long[] {size, 1}));
            inputs.put("position_ids", owned.get(owned.size() - 1));
          }
          owned.add(tokens(mask, new long[] {size, total}));
          inputs.put("attention_mask", owned.get(owned.size() - 1));
          int index = 0;
          for (int layer = 0; layer < layers; layer++) {
            for (int part = 0; part < parts(); part++) {
              inputs.put(pastName(layer, part), previous != null
                  ? (OnnxTensor) previous.get(presentName(layer, part)).orElseThrow() : pasts.get(index++));
            }
          }
          OrtSession.Result result = session.run(inputs);
          if (previous != null) {
            previous.close();
          }
          previous = result;
          pasts.forEach(OnnxTensor::close);
          pasts.clear();
          choose(result, 1, 0, size, step, tokens, margins);
        } finally {
          owned.forEach(OnnxTensor::close);
        }
      }
    } finally {
      pasts.forEach(OnnxTensor::close);
      if (previous != null) {
        previous.close();
      }
    }
    return new Output(tokens, margins);
  }

  /** Rows first..first+rows: the best token of the last of {@code sequence} positions, and its margin. */
  private void choose(OrtSession.Result result, int sequence, int first, int rows, int step, int[][] tokens,
      float[][] margins) throws OrtException {
    FloatBuffer logits = ((OnnxTensor) result.get("logits").orElseThrow()).getFloatBuffer();
    for (int row = 0; row < rows; row++) {
      int offset = (int) ((row * (long) sequence + sequence - 1) * vocabulary);
      int best = 0;
      float bestValue = logits.get(offset);
      float second = Float.NEGATIVE_INFINITY;
      for (int token = 1; token < vocabulary; token++) {
        float value = logits.get(offset + token);
        if (value > bestValue) {
          second = bestValue;
          bestValue = value;
          best = token;
        } else if (value > second) {
          second = value;
        }
      }
      tokens[first + row][step] = best;
      margins[first + row][step] = bestValue - second;
    }
  }

  /** The row groups' {@code name} outputs joined along the batch axis into one direct-buffer tensor. */
  private OnnxTensor join(List<OrtSession.Result> groups, String name, int size, int length) throws OrtException {
    int bytes = halfCache ? 2 : 4;
    // GPT-2: [2, batch, ...], two blocks before the batch axis; Optimum: [batch, ...].
    int outer = layout == Layout.GPT2 ? 2 : 1;
    long perRow = heads * length * headSize * bytes;
    ByteBuffer joined = ByteBuffer.allocateDirect(Math.toIntExact(outer * size * perRow)).order(ByteOrder.nativeOrder());
    List<ByteBuffer> parts = new ArrayList<>();
    List<Integer> rows = new ArrayList<>();
    for (OrtSession.Result group : groups) {
      OnnxTensor tensor = (OnnxTensor) group.get(name).orElseThrow();
      parts.add(tensor.getByteBuffer().order(ByteOrder.nativeOrder()));
      rows.add((int) tensor.getInfo().getShape()[layout == Layout.GPT2 ? 1 : 0]);
    }
    for (int o = 0; o < outer; o++) {
      for (int g = 0; g < parts.size(); g++) {
        ByteBuffer part = parts.get(g).duplicate();
        int chunk = Math.toIntExact(rows.get(g) * perRow);
        part.position(o * chunk).limit(o * chunk + chunk);
        joined.put(part);
      }
    }
    joined.flip();
    return OnnxTensor.createTensor(environment, joined, cacheShape(size, length),
        halfCache ? OnnxJavaType.FLOAT16 : OnnxJavaType.FLOAT);
  }

  /** Greedy tokens of one prompt without the cache: the whole sequence each step, empty past. */
  int[] uncached(int[] prompt, int steps) throws OrtException {
    int[] sequence = Arrays.copyOf(prompt, prompt.length + steps);
    int[] out = new int[steps];
    for (int step = 0; step < steps; step++) {
      int length = prompt.length + step;
      long[] shape = {1, length};
      int[] mask = new int[length];
      Arrays.fill(mask, 1);
      Map<String, OnnxTensor> inputs = new HashMap<>();
      try {
        inputs.put("input_ids", tokens(Arrays.copyOf(sequence, length), shape));
        if (positions) {
          inputs.put("position_ids", tokens(IntStream.range(0, length).toArray(), shape));
        }
        inputs.put("attention_mask", tokens(mask, shape));
        for (int layer = 0; layer < layers; layer++) {
          for (int part = 0; part < parts(); part++) {
            inputs.put(pastName(layer, part), emptyCache(1));
          }
        }
        try (OrtSession.Result result = session.run(inputs)) {
          int[][] token = new int[1][1];
          choose(result, length, 0, 1, 0, token, new float[1][1]);
          out[step] = token[0][0];
          sequence[length] = out[step];
        }
      } finally {
        inputs.values().forEach(OnnxTensor::close);
      }
    }
    return out;
  }
}
