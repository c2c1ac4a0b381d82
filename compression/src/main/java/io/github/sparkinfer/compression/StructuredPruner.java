package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Structured pruning (issue 19, first part): removes whole hidden units of linear → elementwise →
 * linear chains (an MLP's Gemm → Relu → Gemm; a transformer feed-forward block's MatMul → Add → GELU
 * → MatMul), so the result is a smaller dense model that is faster on every device without sparse
 * kernels. A chain's first linear is a Gemm (transA=0) or a MatMul with an optional bias Add, its
 * weights float initializers; then any run of elementwise operators whose other inputs are scalars
 * (Relu, GELU as Div/Erf/Add/Mul, ...); then a Gemm (transA=0) or MatMul reading the hidden units.
 * Every value inside the chain must be read only inside it, and its weights nowhere else.
 *
 * <p>Importance of hidden unit j: sqrt(|W1[:, j]|² + b1[j]²) × |W2[j, :]| (incoming weights and bias,
 * times outgoing weights, L2 norms): a unit whose outgoing weights are zero contributes nothing and
 * scores 0. The {@code ratio} of each chain's lowest-scoring units is removed (at least one unit
 * stays).
 *
 * <p>With {@link #withUnitEnergy} the score uses the user's data instead of the incoming weights:
 * sqrt(Σ a_j²) × |W2[j, :]|, where Σ a_j² is unit j's squared activation summed over rows (and real
 * tokens), as {@link UnitEnergyProbe} measures it: how much unit j adds to the next layer on that
 * data. The sums come from the original model; a later chain's are not measured again after an
 * earlier chain lost units.
 */
public final class StructuredPruner {
  private final double ratio;
  private final Map<String, double[]> unitEnergy;

  private StructuredPruner(double ratio, Map<String, double[]> unitEnergy) {
    this.ratio = ratio;
    this.unitEnergy = unitEnergy;
  }

  /**
   * A pruner that scores units by their activations on data: {@code energy} maps each chain (its
   * first weight's name, {@link Chain#firstWeight()}) to Σ a_j² per hidden unit, as
   * {@link UnitEnergyProbe#split} returns it. Every chain of the pruned model must have its sums.
   */
  public StructuredPruner withUnitEnergy(Map<String, double[]> energy) {
    Map<String, double[]> copy = new HashMap<>();
    energy.forEach((chain, sums) -> copy.put(chain, sums.clone()));
    return new StructuredPruner(ratio, Map.copyOf(copy));
  }

  /** A pruner removing {@code ratio} (0 to below 1) of each chain's hidden units. */
  public static StructuredPruner ofRatio(double ratio) {
    if (!(ratio >= 0 && ratio < 1)) {
      throw new IllegalArgumentException("Invalid pruning ratio " + ratio + ": must be at least 0 and below 1");
    }
    return new StructuredPruner(ratio, null);
  }

  /** What pruning did to one chain. */
  public static final class Chain {
    private final String firstWeight;
    private final int unitsBefore;
    private final int unitsAfter;

    Chain(String firstWeight, int unitsBefore, int unitsAfter) {
      this.firstWeight = firstWeight;
      this.unitsBefore = unitsBefore;
      this.unitsAfter = unitsAfter;
    }

    /** The initializer of the chain's first weights, naming the chain. */
    public String firstWeight() {
      return firstWeight;
    }

    public int unitsBefore() {
      return unitsBefore;
    }

    public int unitsAfter() {
      return unitsAfter;
    }

    @Override
    public String toString() {
      return firstWeight + ": " + unitsBefore + " → " + unitsAfter + " hidden units";
    }
  }

  /** The pruned model and what was pruned. */
  public static final class Result {
    private final OnnxModel model;
    private final List<Chain> chains;

    Result(OnnxModel model, List<Chain> chains) {
      this.model = model;
      this.chains = List.copyOf(chains);
    }

    public OnnxModel model() {
      return model;
    }

    public List<Chain> chains() {
      return chains;
    }
  }

  /** Prunes every chain the model has by the importance score. */
  public Result prune(OnnxModel model) {
    return prune(model, null);
  }

  Result prune(OnnxModel model, Map<String, int[]> removedByChain) {
    Objects.requireNonNull(model, "model");
    // One chain at a time on the model as pruned so far: an MLP's middle layer is the second linear
    // of one chain (its input columns go) and the first of the next (its output rows go).
    OnnxModel current = model;
    List<Chain> chains = new ArrayList<>();
    Set<String> done = new HashSet<>();
    while (true) {
      GraphProto graph = current.proto().getGraph();
      PrunableChain chain = PrunableChain.all(graph).stream().filter(candidate -> !done.contains(candidate.w1))
          .findFirst().orElse(null);
      if (chain == null) {
        return new Result(current, chains);
      }
      Map<String, TensorProto> initializers = new HashMap<>();
      graph.getInitializerList().forEach(tensor -> initializers.put(tensor.getName(), tensor));
      done.add(chain.w1);
      int[] forced = removedByChain == null ? null : removedByChain.get(chain.w1);
      current = pruneChain(current, chain, initializers, forced, chains);
    }
  }

  private OnnxModel pruneChain(OnnxModel model, PrunableChain chain, Map<String, TensorProto> initializers, int[] forced,
      List<Chain> chains) {
    int hidden = chain.hidden;
    float[] w1 = Tensors.floats(initializers.get(chain.w1));
    float[] b1 = chain.b1 == null ? null : Tensors.floats(initializers.get(chain.b1));
    float[] w2 = Tensors.floats(initializers.get(chain.w2));
    int inputs = w1.length / hidden;
    int outputs = w2.length / hidden;
    boolean[] keep = new boolean[hidden];
    java.util.Arrays.fill(keep, true);
    if (forced != null) {
      for (int unit : forced) {
        keep[unit] = false;
      }
    } else {
      double[] energy = unitEnergy == null ? null : unitEnergy.get(chain.w1);
      if (unitEnergy != null && (energy == null || energy.length != hidden)) {
        throw new IllegalArgumentException("No activation sums for the chain starting at weights '" + chain.w1
            + "' (" + hidden + " hidden units)" + (energy == null ? "" : ": " + energy.length + " were given")
            + ". Measure them on this model with UnitEnergyProbe; sums measured on another model do not apply");
      }
      double[] score = new double[hidden];
      for (int j = 0; j < hidden; j++) {
        double in = b1 == null ? 0 : (double) b1[j] * b1[j];
        for (int k = 0; energy == null && k < inputs; k++) {
          float value = w1[chain.w1HiddenFirst ? j * inputs + k : k * hidden + j];
          in += (double) value * value;
        }
        if (energy != null) {
          in = energy[j];
        }
        double out = 0;
        for (int k = 0; k < outputs; k++) {
          float value = w2[chain.w2HiddenFirst ? j * outputs + k : k * hidden + j];
          out += (double) value * value;
        }
        score[j] = Math.sqrt(in) * Math.sqrt(out);
      }
      int remove = Math.min(hidden - 1, (int) Math.floor(hidden * ratio));
      Integer[] order = new Integer[hidden];
      for (int j = 0; j < hidden; j++) {
        order[j] = j;
      }
      // Lowest score first; ties by unit index, so the result does not depend on the sort.
      java.util.Arrays.sort(order, (a, b) -> score[a] != score[b] ? Double.compare(score[a], score[b]) : a - b);
      for (int r = 0; r < remove; r++) {
        keep[order[r]] = false;
      }
    }
    int kept = 0;
    for (boolean value : keep) {
      kept += value ? 1 : 0;
    }
    chains.add(new Chain(chain.w1, hidden, kept));
    if (kept == hidden) {
      return model;
    }
    Map<String, TensorProto> replaced = new HashMap<>();
    replaced.put(chain.w1, slice(initializers.get(chain.w1), w1, hidden, inputs, keep, kept, chain.w1HiddenFirst));
    if (b1 != null) {
      replaced.put(chain.b1, slice(initializers.get(chain.b1), b1, hidden, 1, keep, kept, true));
    }
    replaced.put(chain.w2, slice(initializers.get(chain.w2), w2, hidden, outputs, keep, kept, chain.w2HiddenFirst));
    GraphProto.Builder result = model.proto().getGraph().toBuilder();
    for (int i = 0; i < result.getInitializerCount(); i++) {
      TensorProto replacement = replaced.get(result.getInitializer(i).getName());
      if (replacement != null) {
        result.setInitializer(i, replacement);
      }
    }
    // The hidden values' shapes changed: their declarations go (ONNX Runtime infers them again).
    for (int i = result.getValueInfoCount() - 1; i >= 0; i--) {
      if (chain.values.contains(result.getValueInfo(i).getName())) {
        result.removeValueInfo(i);
      }
    }
    return new OnnxModel(model.proto().toBuilder().setGraph(result).build());
  }

  private static TensorProto slice(TensorProto tensor, float[] values, int hidden, int other, boolean[] keep, int kept,
      boolean hiddenFirst) {
    float[] sliced = new float[kept * other];
    int at = 0;
    if (hiddenFirst) {
      for (int j = 0; j < hidden; j++) {
        if (keep[j]) {
          System.arraycopy(values, j * other, sliced, at, other);
          at += other;
        }
      }
    } else {
      for (int k = 0; k < other; k++) {
        for (int j = 0; j < hidden; j++) {
          if (keep[j]) {
            sliced[at++] = values[k * hidden + j];
          }
        }
      }
    }
    long[] dimensions = new long[tensor.getDimsCount()];
    for (int d = 0; d < dimensions.length; d++) {
      dimensions[d] = tensor.getDims(d);
    }
    if (dimensions.length == 1) {
      dimensions[0] = kept;
    } else if (hiddenFirst) {
      dimensions[0] = kept;
    } else {
      dimensions[1] = kept;
    }
    return Tensors.floatTensor(tensor.getName(), sliced, dimensions).toBuilder().setDocString(tensor.getDocString())
        .build();
  }
}
