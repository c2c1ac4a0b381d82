package io.github.sparkinfer.compression;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * A multilayer perceptron with deterministic random weights, as an ONNX model: for tests, examples
 * and benchmarks that need a real model of a chosen size without shipping one.
 *
 * <p>Each layer is a Gemm with a {@code [out, in]} weight ({@code transB=1}, as PyTorch exports
 * linear layers) and a bias; ReLU follows every layer but the last. The input is FLOAT {@code
 * [batch, inputSize]}, the output FLOAT {@code [batch, outputSize]}. Weights are He-uniform, so
 * activations keep roughly unit scale through the layers for inputs of unit scale.
 *
 * <pre>{@code
 * MultilayerPerceptronModel mlp = MultilayerPerceptronModel.builder()
 *     .layerSizes(64, 256, 256, 16).seed(42).inputName("features").outputName("scores").build();
 * mlp.writeTo(Path.of("mlp.onnx"));
 * float[] expected = mlp.forward(row);
 * }</pre>
 */
public final class MultilayerPerceptronModel {
  private final int[] layerSizes;
  private final String inputName;
  private final String outputName;
  // weights[layer] is [out][in] row-major, as stored in the model.
  private final float[][] weights;
  private final float[][] biases;
  private final OnnxModel model;

  private MultilayerPerceptronModel(Builder builder) {
    this.layerSizes = builder.layerSizes.clone();
    this.inputName = builder.inputName;
    this.outputName = builder.outputName;
    int layers = layerSizes.length - 1;
    this.weights = new float[layers][];
    this.biases = new float[layers][];
    SplittableRandom random = new SplittableRandom(builder.seed);
    for (int layer = 0; layer < layers; layer++) {
      int in = layerSizes[layer];
      int out = layerSizes[layer + 1];
      // He-uniform: variance 2 / fanIn offsets ReLU zeroing half the activations.
      weights[layer] = uniform(random, Math.multiplyExact(out, in), Math.sqrt(6.0 / in));
      // PyTorch's default bias range; non-zero so that the Gemm's bias input is exercised.
      biases[layer] = uniform(random, out, 1.0 / Math.sqrt(in));
    }
    this.model = buildModel();
  }

  public static Builder builder() {
    return new Builder();
  }

  private static float[] uniform(SplittableRandom random, int count, double bound) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextDouble(-bound, bound);
    }
    return values;
  }

  private OnnxModel buildModel() {
    OnnxModelBuilder builder =
        OnnxModelBuilder.create("mlp")
            .input(inputName, OnnxElementType.FLOAT, "batch", inputSize())
            .output(outputName, OnnxElementType.FLOAT, "batch", outputSize());
    String previous = inputName;
    for (int layer = 0; layer < weights.length; layer++) {
      String weight = "layer" + layer + ".weight";
      String bias = "layer" + layer + ".bias";
      builder
          .initializer(weight, weights[layer], layerSizes[layer + 1], layerSizes[layer])
          .initializer(bias, biases[layer], layerSizes[layer + 1]);
      boolean last = layer == weights.length - 1;
      String linear = last ? outputName : "layer" + layer + ".linear";
      builder.node(
          "Gemm", List.of(previous, weight, bias), List.of(linear), Attribute.ofInt("transB", 1));
      if (!last) {
        String activation = "layer" + layer + ".relu";
        builder.node("Relu", List.of(linear), List.of(activation));
        previous = activation;
      }
    }
    return builder.build();
  }

  public OnnxModel model() {
    return model;
  }

  public byte[] toBytes() {
    return model.toBytes();
  }

  public void writeTo(Path path) throws IOException {
    model.writeTo(path);
  }

  /**
   * The model's output for one input row, computed in plain Java: in double from the float
   * weights, rounded to float at the end, so a reference to check ONNX Runtime against.
   */
  public float[] forward(float[] inputRow) {
    if (inputRow.length != inputSize()) {
      throw new IllegalArgumentException(
          "Input row has " + inputRow.length + " values, the model takes " + inputSize());
    }
    double[] activations = new double[inputRow.length];
    for (int i = 0; i < inputRow.length; i++) {
      activations[i] = inputRow[i];
    }
    for (int layer = 0; layer < weights.length; layer++) {
      int in = layerSizes[layer];
      int out = layerSizes[layer + 1];
      double[] next = new double[out];
      for (int o = 0; o < out; o++) {
        double sum = biases[layer][o];
        for (int i = 0; i < in; i++) {
          sum += (double) weights[layer][o * in + i] * activations[i];
        }
        next[o] = layer == weights.length - 1 ? sum : Math.max(0.0, sum);
      }
      activations = next;
    }
    float[] output = new float[activations.length];
    for (int o = 0; o < output.length; o++) {
      output[o] = (float) activations[o];
    }
    return output;
  }

  /** Layer {@code layer}'s weights, [out][in] row-major as stored in the model; a copy. */
  public float[] weights(int layer) {
    return weights[layer].clone();
  }

  /** Layer {@code layer}'s biases; a copy. */
  public float[] biases(int layer) {
    return biases[layer].clone();
  }

  public int inputSize() {
    return layerSizes[0];
  }

  public int outputSize() {
    return layerSizes[layerSizes.length - 1];
  }

  /** Input size, hidden sizes, output size. */
  public int[] layerSizes() {
    return layerSizes.clone();
  }

  public String inputName() {
    return inputName;
  }

  public String outputName() {
    return outputName;
  }

  @Override
  public String toString() {
    return "MultilayerPerceptronModel" + Arrays.toString(layerSizes);
  }

  public static final class Builder {
    private int[] layerSizes;
    private long seed = 42;
    private String inputName = "features";
    private String outputName = "scores";

    private Builder() {}

    /** Input size, any hidden sizes, output size: at least two sizes, each at least 1. */
    public Builder layerSizes(int... sizes) {
      if (sizes.length < 2) {
        throw new IllegalArgumentException(
            "Need at least an input and an output size, got " + sizes.length + " sizes");
      }
      for (int size : sizes) {
        if (size < 1) {
          throw new IllegalArgumentException("Layer sizes must be >= 1: " + size);
        }
      }
      this.layerSizes = sizes.clone();
      return this;
    }

    /** Seed of the weights: equal seeds and sizes give byte-identical models. Default 42. */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** Default {@code "features"}. */
    public Builder inputName(String name) {
      this.inputName = requireName(name);
      return this;
    }

    /** Default {@code "scores"}. */
    public Builder outputName(String name) {
      this.outputName = requireName(name);
      return this;
    }

    public MultilayerPerceptronModel build() {
      if (layerSizes == null) {
        throw new IllegalStateException("layerSizes is required");
      }
      if (inputName.equals(outputName)) {
        throw new IllegalStateException("Input and output names must differ: " + inputName);
      }
      return new MultilayerPerceptronModel(this);
    }

    private static String requireName(String name) {
      Objects.requireNonNull(name, "name");
      if (name.isEmpty()) {
        throw new IllegalArgumentException("Name must not be empty");
      }
      return name;
    }
  }
}
