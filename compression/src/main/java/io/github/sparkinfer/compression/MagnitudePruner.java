package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.HashSet;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

/**
 * Unstructured magnitude pruning: in every float weight matrix that a MatMul or Gemm reads (an
 * initializer of rank 2), the {@code ratio} of entries smallest in absolute value become 0, per
 * tensor.
 *
 * <p>What it does not do: the tensors keep their shapes and dense storage, so the file is as large
 * and the model as fast as before on every dense kernel (ONNX Runtime's CPU and CUDA MatMul/Gemm
 * skip no zeros). It only pays off paired with something that exploits zeros: a general-purpose
 * compressor over the file (smaller downloads), or sparse kernels sparkinfer does not have. For a
 * smaller, faster model, use {@link StructuredPruner}.
 */
public final class MagnitudePruner {
  private final double ratio;

  private MagnitudePruner(double ratio) {
    this.ratio = ratio;
  }

  /** A pruner zeroing {@code ratio} (0 to below 1) of each weight matrix. */
  public static MagnitudePruner ofRatio(double ratio) {
    if (!(ratio >= 0 && ratio < 1)) {
      throw new IllegalArgumentException("Invalid pruning ratio " + ratio + ": must be at least 0 and below 1");
    }
    return new MagnitudePruner(ratio);
  }

  /** The pruned model and how many weights became 0. */
  public static final class Result {
    private final OnnxModel model;
    private final int tensors;
    private final long zeroed;
    private final long weights;

    Result(OnnxModel model, int tensors, long zeroed, long weights) {
      this.model = model;
      this.tensors = tensors;
      this.zeroed = zeroed;
      this.weights = weights;
    }

    public OnnxModel model() {
      return model;
    }

    /** Weight matrices pruned. */
    public int tensors() {
      return tensors;
    }

    /** Entries set to 0 (not counting those that were 0 already). */
    public long zeroed() {
      return zeroed;
    }

    /** Entries of the pruned matrices. */
    public long weights() {
      return weights;
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT, "zeroed %,d of %,d weights (%.1f %%) in %d matrices; shapes and dense"
          + " storage unchanged: the file is as large and the model as fast on dense kernels", zeroed, weights,
          weights == 0 ? 0.0 : 100.0 * zeroed / weights, tensors);
    }
  }

  public Result prune(OnnxModel model) {
    Objects.requireNonNull(model, "model");
    GraphProto graph = model.proto().getGraph();
    Set<String> linearWeights = new HashSet<>();
    for (NodeProto node : graph.getNodeList()) {
      if ((node.getOpType().equals("MatMul") || node.getOpType().equals("Gemm")) && node.getDomain().isEmpty()
          && node.getInputCount() >= 2) {
        linearWeights.add(node.getInput(1));
      }
    }
    GraphProto.Builder result = graph.toBuilder();
    int tensors = 0;
    long zeroed = 0;
    long weights = 0;
    for (int i = 0; i < result.getInitializerCount(); i++) {
      TensorProto tensor = result.getInitializer(i);
      if (!linearWeights.contains(tensor.getName()) || tensor.getDimsCount() != 2
          || tensor.getDataType() != OnnxElementType.FLOAT.onnxNumber() || Tensors.isExternal(tensor)) {
        continue;
      }
      float[] values = Tensors.floats(tensor);
      int remove = (int) Math.floor(values.length * ratio);
      if (remove == 0) {
        continue;
      }
      float[] magnitudes = new float[values.length];
      for (int k = 0; k < values.length; k++) {
        magnitudes[k] = Math.abs(values[k]);
      }
      java.util.Arrays.sort(magnitudes);
      float threshold = magnitudes[remove - 1];
      // Entries below the threshold all go; ties at it go in index order until `remove` are gone.
      int below = 0;
      for (float magnitude : magnitudes) {
        if (magnitude < threshold) {
          below++;
        }
      }
      int tiesToRemove = remove - below;
      for (int k = 0; k < values.length; k++) {
        float magnitude = Math.abs(values[k]);
        if (magnitude < threshold || (magnitude == threshold && tiesToRemove-- > 0)) {
          zeroed += values[k] != 0 ? 1 : 0;
          values[k] = 0f;
        }
      }
      result.setInitializer(i, Tensors.floatTensor(tensor.getName(), values,
          tensor.getDimsList().stream().mapToLong(Long::longValue).toArray()).toBuilder()
          .setDocString(tensor.getDocString()).build());
      tensors++;
      weights += values.length;
    }
    return new Result(new OnnxModel(model.proto().toBuilder().setGraph(result).build()), tensors, zeroed, weights);
  }
}
