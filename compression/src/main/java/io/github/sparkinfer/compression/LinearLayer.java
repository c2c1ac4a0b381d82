package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.List;

/**
 * A MatMul or Gemm whose weight is a constant float32 2-D initializer: {@code y = x · W (+ bias)}
 * with W of K rows (input features) and N columns (output features). What the int8 and int4
 * rewrites replace; Gemm's alpha, beta and transB are folded here so that they need not care.
 */
final class LinearLayer {
  final NodeProto node;
  final String activation;
  final TensorProto weight;
  final boolean weightTransposed;
  final float alpha;
  final int inputFeatures;
  final int outputFeatures;

  /** Gemm's C, or null: a constant bias of N values, already multiplied by beta. */
  final float[] constantBias;

  /** Gemm's C when it is not a constant (beta is 1 then), or null. */
  final String variableBias;

  /** Gemm's C when it is a constant that serves as the bias as it is: N values, beta 1. */
  final String reusableBias;

  final String output;

  private LinearLayer(NodeProto node, GraphIndex index) {
    this.node = node;
    this.activation = node.getInput(0);
    this.weight = index.constant(node.getInput(1));
    this.output = node.getOutput(0);
    boolean gemm = node.getOpType().equals("Gemm");
    this.weightTransposed = gemm && intAttribute(node, "transB", 0) != 0;
    this.alpha = gemm ? floatAttribute(node, "alpha", 1f) : 1f;
    int rows = (int) weight.getDims(0);
    int columns = (int) weight.getDims(1);
    this.inputFeatures = weightTransposed ? columns : rows;
    this.outputFeatures = weightTransposed ? rows : columns;
    String bias = gemm && node.getInputCount() > 2 ? node.getInput(2) : "";
    if (bias.isEmpty()) {
      this.constantBias = null;
      this.variableBias = null;
      this.reusableBias = null;
    } else if (index.constant(bias) != null) {
      float beta = floatAttribute(node, "beta", 1f);
      List<Long> dimensions = index.constant(bias).getDimsList();
      this.reusableBias =
          beta == 1f && dimensions.size() == 1 && dimensions.get(0) == outputFeatures ? bias : null;
      float[] values = Tensors.floats(index.constant(bias));
      float[] perColumn = new float[outputFeatures];
      for (int n = 0; n < outputFeatures; n++) {
        perColumn[n] = beta * values[values.length == 1 ? 0 : n];
      }
      this.constantBias = perColumn;
      this.variableBias = null;
    } else {
      this.constantBias = null;
      this.variableBias = bias;
      this.reusableBias = null;
    }
  }

  /** The layer of a node, or null when {@link #reasonToLeave} has a reason. */
  static LinearLayer of(NodeProto node, GraphIndex index, long minimumWeightElements) {
    return reasonToLeave(node, index, minimumWeightElements) == null
        ? new LinearLayer(node, index)
        : null;
  }

  static boolean isCandidate(NodeProto node) {
    return isDefaultDomain(node)
        && (node.getOpType().equals("MatMul") || node.getOpType().equals("Gemm"));
  }

  /** Why a MatMul or Gemm is left as it is, or null when it can be rewritten. */
  static String reasonToLeave(NodeProto node, GraphIndex index, long minimumWeightElements) {
    if (node.getInputCount() < 2 || node.getOutputCount() < 1) {
      return "has fewer than two inputs";
    }
    String weightName = node.getInput(1);
    if (index.isGraphInput(weightName)) {
      return "weight " + weightName + " is a graph input a caller may override, not a constant";
    }
    TensorProto weight = index.constant(weightName);
    if (weight == null) {
      return "second input " + weightName + " is computed, not a constant initializer";
    }
    if (weight.getDataType() != OnnxElementType.FLOAT.onnxNumber()) {
      return "weight " + weightName + " is " + typeName(weight.getDataType()) + ", not FLOAT";
    }
    if (weight.getDimsCount() != 2) {
      return "weight " + weightName + " has shape " + weight.getDimsList() + ", not 2-D";
    }
    if (Tensors.isExternal(weight)) {
      return "weight " + weightName + " is stored as external data, which is not read here";
    }
    if (index.constant(node.getInput(0)) != null) {
      return "activation " + node.getInput(0) + " is a constant too";
    }
    if (node.getOpType().equals("Gemm")) {
      if (intAttribute(node, "transA", 0) != 0) {
        return "Gemm has transA=1";
      }
      if (node.getInputCount() > 2 && !node.getInput(2).isEmpty()) {
        String bias = node.getInput(2);
        TensorProto constantBias = index.constant(bias);
        long columns = intAttribute(node, "transB", 0) != 0 ? weight.getDims(0) : weight.getDims(1);
        if (constantBias == null) {
          if (floatAttribute(node, "beta", 1f) != 1f) {
            return "Gemm has a computed C with beta != 1";
          }
        } else if (constantBias.getDataType() != OnnxElementType.FLOAT.onnxNumber()
            || Tensors.isExternal(constantBias)) {
          return "Gemm's C " + bias + " is not a FLOAT tensor stored in the model";
        } else if (!isPerColumn(constantBias.getDimsList(), columns)) {
          return "Gemm's C "
              + bias
              + " has shape "
              + constantBias.getDimsList()
              + ", not one value per output column";
        }
      }
    }
    long elements = weight.getDims(0) * weight.getDims(1);
    if (elements < minimumWeightElements) {
      return "weight "
          + weightName
          + " "
          + weight.getDimsList()
          + " has fewer than "
          + minimumWeightElements
          + " values: quantizing it saves less than the extra nodes cost";
    }
    return null;
  }

  /** Shapes that broadcast as one value per output column: [], [1], [N], [1, N]. */
  private static boolean isPerColumn(List<Long> dimensions, long columns) {
    long count = 1;
    for (int i = 0; i < dimensions.size(); i++) {
      long dimension = dimensions.get(i);
      if (i < dimensions.size() - 1 && dimension != 1) {
        return false;
      }
      count *= dimension;
    }
    return dimensions.size() <= 2 && (count == 1 || count == columns);
  }

  /** The weight as K rows of N values, alpha applied. */
  float[] weightByInputFeature() {
    float[] stored = Tensors.floats(weight);
    float[] result = new float[stored.length];
    int k = inputFeatures;
    int n = outputFeatures;
    for (int row = 0; row < k; row++) {
      for (int column = 0; column < n; column++) {
        float value = weightTransposed ? stored[column * k + row] : stored[row * n + column];
        result[row * n + column] = alpha * value;
      }
    }
    return result;
  }

  /** The weight as N rows of K values (one row per output feature), alpha applied. */
  float[] weightByOutputFeature() {
    float[] stored = Tensors.floats(weight);
    float[] result = new float[stored.length];
    int k = inputFeatures;
    int n = outputFeatures;
    for (int column = 0; column < n; column++) {
      for (int row = 0; row < k; row++) {
        float value = weightTransposed ? stored[column * k + row] : stored[row * n + column];
        result[column * k + row] = alpha * value;
      }
    }
    return result;
  }

  /** A name prefix for the nodes that replace this one. */
  String namePrefix() {
    return node.getName().isEmpty() ? output : node.getName();
  }

  String describe() {
    return node.getOpType()
        + " "
        + activation
        + " x "
        + weight.getName()
        + " [K="
        + inputFeatures
        + ", N="
        + outputFeatures
        + "]"
        + (weightTransposed ? " (transB)" : "")
        + (alpha != 1f ? " (alpha " + alpha + ")" : "");
  }

  static boolean isDefaultDomain(NodeProto node) {
    return node.getDomain().isEmpty() || node.getDomain().equals("ai.onnx");
  }

  static long intAttribute(NodeProto node, String name, long defaultValue) {
    for (AttributeProto attribute : node.getAttributeList()) {
      if (attribute.getName().equals(name)) {
        return attribute.getI();
      }
    }
    return defaultValue;
  }

  static float floatAttribute(NodeProto node, String name, float defaultValue) {
    for (AttributeProto attribute : node.getAttributeList()) {
      if (attribute.getName().equals(name)) {
        return attribute.getF();
      }
    }
    return defaultValue;
  }

  static String typeName(int onnxNumber) {
    try {
      return OnnxElementType.fromOnnxNumber(onnxNumber).name();
    } catch (IllegalArgumentException e) {
      return "type " + onnxNumber;
    }
  }
}
