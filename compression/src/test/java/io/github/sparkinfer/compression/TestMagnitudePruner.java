package io.github.sparkinfer.compression;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Unstructured pruning checked entry by entry (the smallest |w| of each matrix become 0, the rest
 * stay), against a forward pass written here with the same zeros, and for what it must not claim:
 * the file is as large as before.
 */
class TestMagnitudePruner {
  @TempDir Path directory;

  @Test
  void zeroesTheSmallestWeightsOfEachMatrixAndNothingElse() throws Exception {
    MultilayerPerceptronModel network = MultilayerPerceptronModel.builder().layerSizes(64, 256, 16).seed(6)
        .inputName("features").outputName("scores").build();
    MagnitudePruner.Result result = MagnitudePruner.ofRatio(0.5).prune(network.model());
    assertThat(result.tensors()).isEqualTo(2);
    assertThat(result.weights()).isEqualTo(64 * 256 + 256 * 16);
    assertThat(result.zeroed()).isEqualTo(64 * 256 / 2 + 256 * 16 / 2);
    assertThat(result.toString()).contains("the file is as large and the model as fast on dense kernels");
    float[][] pruned = new float[2][];
    for (int layer = 0; layer < 2; layer++) {
      float[] before = network.weights(layer);
      float[] after = Tensors.floats(TestStructuredPruner.initializer(result.model().proto().getGraph(),
          "layer" + layer + ".weight"));
      float largestZeroed = 0;
      float smallestKept = Float.MAX_VALUE;
      int zeros = 0;
      for (int k = 0; k < before.length; k++) {
        if (after[k] == 0) {
          zeros++;
          largestZeroed = Math.max(largestZeroed, Math.abs(before[k]));
        } else {
          assertThat(after[k]).isEqualTo(before[k]);
          smallestKept = Math.min(smallestKept, Math.abs(before[k]));
        }
      }
      assertThat(zeros).isEqualTo(before.length / 2);
      assertThat(largestZeroed).isLessThanOrEqualTo(smallestKept);
      pruned[layer] = after;
    }
    // Biases are not matrices: untouched. The model computes relu(x W0ᵀ + b0) W1ᵀ + b1 with the zeros.
    float[] input = TestStructuredPruner.random(8 * 64, 3);
    float[] actual = TestStructuredPruner.run(result.model(), Map.of("features", input), new long[] {8, 64}, "scores");
    float[] b0 = network.biases(0);
    float[] b1 = network.biases(1);
    for (int r = 0; r < 8; r++) {
      double[] hidden = new double[256];
      for (int j = 0; j < 256; j++) {
        double sum = b0[j];
        for (int k = 0; k < 64; k++) {
          sum += (double) input[r * 64 + k] * pruned[0][j * 64 + k];
        }
        hidden[j] = Math.max(0, sum);
      }
      for (int o = 0; o < 16; o++) {
        double sum = b1[o];
        for (int j = 0; j < 256; j++) {
          sum += hidden[j] * pruned[1][o * 256 + j];
        }
        assertThat(actual[r * 16 + o]).isCloseTo((float) sum, Offset.offset(1e-4f));
      }
    }
    Path original = directory.resolve("mlp.onnx");
    Path sparse = directory.resolve("mlp.magnitude.onnx");
    network.writeTo(original);
    result.model().writeTo(sparse);
    assertThat(Files.size(sparse)).isBetween(Files.size(original) - 64, Files.size(original) + 64);
  }

  @Test
  void refusesRatiosOutsideZeroToOne() {
    assertThatThrownBy(() -> MagnitudePruner.ofRatio(1)).hasMessageContaining("Invalid pruning ratio 1.0");
    assertThatThrownBy(() -> MagnitudePruner.ofRatio(Double.NaN)).isInstanceOf(IllegalArgumentException.class);
  }
}
