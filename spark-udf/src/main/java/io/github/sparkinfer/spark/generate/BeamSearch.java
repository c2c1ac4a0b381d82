package io.github.sparkinfer.spark.generate;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Beam search over a {@link DecodeLoop}'s decoder: each prompt keeps {@code numBeams} sequences, each
 * a row of the batch with its own cache. Every step scores each beam's continuations by the beam's
 * sum of log-probabilities plus the token's, keeps the best {@code numBeams} continuations of each
 * prompt across its beams (a stop token among the best ends a finished hypothesis instead), and
 * reorders the cache rows to follow their parent beams. A prompt is done when it has {@code numBeams}
 * finished hypotheses; at the most new tokens its running beams are hypotheses too. The result is the
 * hypothesis with the best sum of log-probabilities divided by its length (tokens, the stop token
 * counted), as Hugging Face's length_penalty=1, with early_stopping=True (a prompt ends at numBeams
 * finished hypotheses; Hugging Face's default goes on while a running beam could still win).
 *
 * <p>All beams of a prompt start from the prompt's one first step (the others scored -inf), so step
 * one chooses the {@code numBeams} best first tokens. The cache is reordered through host memory:
 * the CPU path, like the loop itself.
 */
final class BeamSearch {
  private final DecodeLoop loop;

  BeamSearch(DecodeLoop loop) {
    this.loop = loop;
  }

  /** A finished sequence of one prompt. */
  private static final class Hypothesis {
    final int[] tokens;
    final double score;
    final String finishReason;

    Hypothesis(int[] tokens, double sum, int length, String finishReason) {
      this.tokens = tokens;
      this.score = sum / Math.max(1, length);
      this.finishReason = finishReason;
    }
  }

  DecodeLoop.Generation[] generate(int[][] prompts, GenerationOptions options, int padToken,
      DecodeLoop.StopCheck stopCheck) throws OrtException {
    int beams = options.numBeams();
    int batch = prompts.length;
    int rows = batch * beams;
    int[][] expanded = new int[rows][];
    for (int row = 0; row < rows; row++) {
      expanded[row] = prompts[row / beams];
    }
    DecodeLoop.PaddedPrompts padded = new DecodeLoop.PaddedPrompts(expanded, padToken, loop.leftPadding);
    long[][] mask = padded.mask;
    long[][] stepIds = padded.ids;
    long[][] stepPositions = padded.positions;
    long[] nextPosition = padded.nextPosition;
    double[] beamScore = new double[rows];
    int[][] sequences = new int[rows][0];
    for (int row = 0; row < rows; row++) {
      beamScore[row] = row % beams == 0 ? 0 : Double.NEGATIVE_INFINITY;
    }
    List<List<Hypothesis>> finished = new ArrayList<>();
    for (int prompt = 0; prompt < batch; prompt++) {
      finished.add(new ArrayList<>());
    }
    boolean[] promptDone = new boolean[batch];
    int vocabulary = (int) loop.layout.vocabularySize();
    DecodeLoop.Step previous = null;
    Map<String, OnnxTensor> owned = new HashMap<>();
    try {
      Map<String, OnnxValue> inputs = new HashMap<>();
      for (int layer = 0; layer < loop.layout.layers(); layer++) {
        for (String past : loop.layout.pastNames(layer)) {
          OnnxTensor empty = loop.emptyCache(rows);
          owned.put(past, empty);
          inputs.put(past, empty);
        }
      }
      int[] columns = loop.promptEnds(expanded, padded.longest);
      for (int step = 0; step < options.maxNewTokens(); step++) {
        loop.putTokens(inputs, owned, stepIds, mask, stepPositions);
        DecodeLoop.Step result = loop.runner.run(DecodeLoop.castInputs(inputs));
        DecodeLoop.closeAll(owned);
        if (previous != null) {
          previous.close();
        }
        previous = result;
        FloatBuffer logits = logits(result, rows, vocabulary);
        int sequence = (int) (logits.capacity() / ((long) rows * vocabulary));
        int[] parents = new int[rows];
        int[] next = new int[rows];
        double[] nextScore = new double[rows];
        int[][] nextSequences = new int[rows][];
        for (int prompt = 0; prompt < batch; prompt++) {
          int first = prompt * beams;
          if (promptDone[prompt]) {
            for (int k = 0; k < beams; k++) {
              parents[first + k] = first + k;
              next[first + k] = padToken;
              nextScore[first + k] = beamScore[first + k];
              nextSequences[first + k] = sequences[first + k];
            }
            continue;
          }
          long[] best = best(logits, first, beams, vocabulary, sequence, step == 0 ? columns : null, beamScore);
          int kept = 0;
          for (int rank = 0; rank < best.length && kept < beams; rank++) {
            int candidate = (int) best[rank];
            int parent = first + candidate / vocabulary;
            int token = candidate % vocabulary;
            double score = beamScore[parent] + logProbability(logits, parent, sequence, step == 0 ? columns : null,
                vocabulary, token);
            int[] extended = Arrays.copyOf(sequences[parent], sequences[parent].length + 1);
            extended[extended.length - 1] = token;
            if (options.stops(token)) {
              // Hugging Face's rule: a stop token ends a hypothesis only from among the best numBeams candidates.
              if (rank < beams) {
                finished.get(prompt).add(new Hypothesis(sequences[parent], score, extended.length, "stop"));
              }
              continue;
            }
            if (stopCheck != null && stopCheck.reached(expanded[parent], boxed(extended))) {
              // The same rank rule as a stop token's.
              if (rank < beams) {
                finished.get(prompt).add(new Hypothesis(extended, score, extended.length, "stop"));
              }
              continue;
            }
            parents[first + kept] = parent;
            next[first + kept] = token;
            nextScore[first + kept] = score;
            nextSequences[first + kept] = extended;
            kept++;
          }
          for (; kept < beams; kept++) {
            // Fewer live continuations than beams (every candidate ended): the spare rows idle.
            parents[first + kept] = first;
            next[first + kept] = padToken;
            nextScore[first + kept] = Double.NEGATIVE_INFINITY;
            nextSequences[first + kept] = sequences[first];
          }
          promptDone[prompt] = finished.get(prompt).size() >= beams;
        }
        beamScore = nextScore;
        sequences = nextSequences;
        boolean all = true;
        for (boolean done : promptDone) {
          all &= done;
        }
        if (all || step == options.maxNewTokens() - 1) {
          break;
        }
        stepIds = new long[rows][1];
        stepPositions = new long[rows][1];
        for (int row = 0; row < rows; row++) {
          stepIds[row][0] = next[row];
          stepPositions[row][0] = nextPosition[row]++;
        }
        mask = DecodeLoop.appendOne(mask);
        inputs.clear();
        for (int layer = 0; layer < loop.layout.layers(); layer++) {
          List<String> past = loop.layout.pastNames(layer);
          List<String> present = loop.layout.presentNames(layer);
          for (int i = 0; i < past.size(); i++) {
            OnnxTensor reordered = reorder((OnnxTensor) result.get(present.get(i)).orElseThrow(), parents,
                past.get(i), step);
            if (reordered == null) {
              inputs.put(past.get(i), result.get(present.get(i)).orElseThrow());
            } else {
              owned.put(past.get(i), reordered);
              inputs.put(past.get(i), reordered);
            }
          }
        }
      }
    } finally {
      DecodeLoop.closeAll(owned);
      if (previous != null) {
        previous.close();
      }
    }
    DecodeLoop.Generation[] generations = new DecodeLoop.Generation[batch];
    for (int prompt = 0; prompt < batch; prompt++) {
      List<Hypothesis> hypotheses = finished.get(prompt);
      if (!promptDone[prompt]) {
        for (int k = 0; k < beams; k++) {
          int row = prompt * beams + k;
          if (beamScore[row] > Double.NEGATIVE_INFINITY) {
            hypotheses.add(new Hypothesis(sequences[row], beamScore[row], sequences[row].length, "length"));
          }
        }
      }
      Hypothesis best = null;
      for (Hypothesis hypothesis : hypotheses) {
        if (best == null || hypothesis.score > best.score) {
          best = hypothesis;
        }
      }
      if (best == null) {
        // Every score was -inf or NaN: the model's numbers are unusable, not the prompt.
        throw new IllegalStateException("Model '" + loop.layout.modelName() + "' gave no finite score to any"
            + " continuation of prompt " + prompt + " of the batch: its logits are not finite (float16 models can"
            + " overflow). Run it at higher precision (spark.sparkinfer.model." + loop.layout.modelName()
            + ".precision=fp32) or check the export");
      }
      generations[prompt] = new DecodeLoop.Generation(best.tokens, best.finishReason);
    }
    return generations;
  }

  private FloatBuffer logits(DecodeLoop.Step result, int rows, int vocabulary) throws OrtException {
    OnnxTensor logits = (OnnxTensor) result.get(DecoderLayout.LOGITS).orElseThrow();
    long[] shape = logits.getInfo().getShape();
    // The graph may promise one shape and give another: checked before the values are indexed by it.
    if (shape.length != 3 || shape[0] != rows || shape[2] != vocabulary || shape[1] < 1
        || shape[0] * shape[1] * shape[2] > Integer.MAX_VALUE) {
      throw new IllegalStateException("Model '" + loop.layout.modelName() + "' returned logits of shape "
          + Arrays.toString(shape) + " for a batch of " + rows + " rows, but its signature says [batch, sequence, "
          + vocabulary + "]. The model's graph does not match its declared outputs: export it again");
    }
    // Upcast from float16 by ONNX Runtime when the model's logits are half precision.
    return logits.getFloatBuffer();
  }

  /** Where row {@code row}'s next-token logits start. */
  private static int offset(int row, int sequence, int[] columns, int vocabulary) {
    int column = columns == null ? sequence - 1 : columns[row];
    if (column >= sequence) {
      throw new IllegalStateException("The model returned logits for " + sequence + " positions, but the prompt step"
          + " fed " + (column + 1) + " or more. Export the model again");
    }
    return (row * sequence + column) * vocabulary;
  }

  private static double logProbability(FloatBuffer logits, int row, int sequence, int[] columns, int vocabulary,
      int token) {
    int offset = offset(row, sequence, columns, vocabulary);
    return logits.get(offset + token) - logSumExp(logits, offset, vocabulary);
  }

  private static double logSumExp(FloatBuffer logits, int offset, int vocabulary) {
    double max = Double.NEGATIVE_INFINITY;
    for (int token = 0; token < vocabulary; token++) {
      max = Math.max(max, logits.get(offset + token));
    }
    double sum = 0;
    for (int token = 0; token < vocabulary; token++) {
      sum += Math.exp(logits.get(offset + token) - max);
    }
    return max + Math.log(sum);
  }

  /**
   * The best 2 × beams continuations of one prompt's beams, as (beam × vocabulary + token), best first;
   * ties by the smaller index, so the order never depends on the search.
   */
  private static long[] best(FloatBuffer logits, int first, int beams, int vocabulary, int sequence, int[] columns,
      double[] beamScore) {
    int wanted = Math.min(2 * beams, beams * vocabulary);
    double[] topScore = new double[wanted];
    long[] topIndex = new long[wanted];
    int size = 0;
    for (int k = 0; k < beams; k++) {
      int row = first + k;
      if (beamScore[row] == Double.NEGATIVE_INFINITY) {
        continue;
      }
      int offset = offset(row, sequence, columns, vocabulary);
      double base = beamScore[row] - logSumExp(logits, offset, vocabulary);
      for (int token = 0; token < vocabulary; token++) {
        double score = base + logits.get(offset + token);
        long index = (long) k * vocabulary + token;
        if (size == wanted && !(score > topScore[size - 1])) {
          continue;
        }
        // Insertion into the small sorted list: later indices lose ties, so they go after equal scores.
        int at = size == wanted ? size - 1 : size++;
        while (at > 0 && topScore[at - 1] < score) {
          topScore[at] = topScore[at - 1];
          topIndex[at] = topIndex[at - 1];
          at--;
        }
        topScore[at] = score;
        topIndex[at] = index;
      }
    }
    return Arrays.copyOf(topIndex, size);
  }

  /**
   * The cache rows of {@code present} taken in the order of {@code parents}, or null when that is the
   * order they are in. The batch axis is the first (key/value layout) or the second (GPT-2's combined
   * [2, batch, ...]).
   */
  private OnnxTensor reorder(OnnxTensor present, int[] parents, String past, int step) throws OrtException {
    boolean identity = true;
    for (int row = 0; row < parents.length && identity; row++) {
      identity = parents[row] == row;
    }
    if (identity) {
      return null;
    }
    long[] shape = present.getInfo().getShape();
    int batchAxis = loop.layout.style() == DecoderLayout.Style.COMBINED ? 1 : 0;
    ByteBuffer source = present.getByteBuffer().order(ByteOrder.nativeOrder());
    long outer = 1;
    for (int axis = 0; axis < batchAxis; axis++) {
      outer *= shape[axis];
    }
    long rows = shape[batchAxis];
    if (rows != parents.length) {
      throw new IllegalStateException("Model '" + loop.layout.modelName() + "' returned a cache of " + rows
          + " rows for a batch of " + parents.length + ": export the model again");
    }
    int block = Math.toIntExact(source.capacity() / (outer * rows));
    ByteBuffer target = buffer(past, step, source.capacity());
    for (long o = 0; o < outer; o++) {
      for (int row = 0; row < rows; row++) {
        int from = Math.toIntExact((o * rows + parents[row]) * block);
        ByteBuffer slice = source.duplicate();
        slice.position(from).limit(from + block);
        target.put(slice);
      }
    }
    target.flip();
    return OnnxTensor.createTensor(loop.environment, target, shape,
        loop.layout.cacheType().equals("FLOAT16") ? OnnxJavaType.FLOAT16 : OnnxJavaType.FLOAT);
  }

  /**
   * Two direct buffers per cache tensor, used in turn: the tensor made from one is the next step's input
   * and is closed after that step's run, before the step after writes the same buffer again. Direct
   * memory is only freed by the garbage collector; a new buffer per layer per step could exhaust it.
   */
  private final java.util.Map<String, ByteBuffer[]> buffers = new java.util.HashMap<>();

  private ByteBuffer buffer(String past, int step, int bytes) {
    ByteBuffer[] pair = buffers.computeIfAbsent(past, name -> new ByteBuffer[2]);
    ByteBuffer buffer = pair[step & 1];
    if (buffer == null || buffer.capacity() < bytes) {
      // Room to grow: the cache gains one position per step.
      buffer = ByteBuffer.allocateDirect((int) Math.min(Integer.MAX_VALUE, bytes + (long) bytes / 2))
          .order(ByteOrder.nativeOrder());
      pair[step & 1] = buffer;
    }
    buffer.clear().limit(bytes);
    return buffer.slice().order(ByteOrder.nativeOrder());
  }

  private static List<Integer> boxed(int[] tokens) {
    List<Integer> list = new ArrayList<>(tokens.length);
    for (int token : tokens) {
      list.add(token);
    }
    return list;
  }
}
