package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Dynamic int8 quantization of MatMul and Gemm with constant weights, as the graph ONNX Runtime's
 * CPU provider fuses:
 *
 * <pre>
 * x_q, x_scale, x_zero_point = DynamicQuantizeLinear(x)       uint8, one scale per run
 * y = Mul(Cast(MatMulInteger(x_q, W_q, x_zero_point), FLOAT),  W_q: int8 [K, N], offline
 *         Mul(x_scale, W_scale))                               W_scale: [] or [N] (per channel)
 * y = Add(y, bias)                                             Gemm's C only
 * </pre>
 *
 * <p>ORT (level 2 optimizations, CPU) turns MatMulInteger, Cast, both Muls and a following Add of a
 * constant bias (ours for Gemm, the model's own after a MatMul, in either input order) into
 * MatMulIntegerToFloat, and that with its DynamicQuantizeLinear into DynamicQuantizeMatMul when
 * nothing else reads the quantized activation. Nodes other than the MatMul or Gemm stay as they
 * are.
 *
 * <p>MatMuls reading the same activation (attention's Q, K and V projections) share one
 * DynamicQuantizeLinear, as in ORT's quantizer's output: quantized once, not once per MatMul. On
 * all-MiniLM-L6-v2, single-threaded, that measured as fast as one DynamicQuantizeLinear per MatMul
 * (each then fused into a DynamicQuantizeMatMul), and as fast as ORT's own int8 model.
 *
 * <p>The weights are symmetric, stored as the {@link Int8Scheme} says: int8 with zero point 0 (no
 * zero point input; u8s8 and u8s8-reduced), or uint8 shifted by 128 with a scalar zero point input
 * of 128 (u8u8), which ORT's fusions and fused kernels take as well. u8s8 is the pair MLAS has its
 * fastest kernels for (AVX-VNNI, AVX512-VNNI, AMX, ARM dot product) and the default of ORT's own
 * quantizer; on x86 CPUs without VNNI its 16-bit pair sums saturate, u8u8 there is exact.
 *
 * <p>Embedding tables (a Gather along axis 0 of a constant float [rows, width] table that only
 * Gathers read) are stored as int8 with one scale per row, and each gathered row is scaled back:
 *
 * <pre>
 * y = Mul(Cast(Gather(table_q, indices), FLOAT), Gather(row_scales, indices))   table_q: int8
 *                                                                                row_scales: [rows, 1]
 * </pre>
 *
 * A quarter of the table's bytes (most of a small text model's file), and more exact than ORT's
 * quantizer's one scale for the whole table: a row's scale follows its own largest value.
 */
final class Int8Quantizer {
  /** DynamicQuantizeLinear is in ONNX from opset 11. */
  private static final int MINIMUM_OPSET = 11;

  private final boolean perChannel;
  private final long minimumWeightElements;
  private final Int8Scheme scheme;
  private final String schemeReason;

  Int8Quantizer(boolean perChannel, long minimumWeightElements, Int8Scheme scheme, String schemeReason) {
    this.perChannel = perChannel;
    this.minimumWeightElements = minimumWeightElements;
    this.scheme = scheme;
    this.schemeReason = schemeReason;
  }

  CompressedModel quantize(ModelProto model) {
    GraphProto graph = model.getGraph();
    GraphIndex index = new GraphIndex(graph);
    CompressionReport.Collector report =
        new CompressionReport.Collector(Precision.INT8).int8Scheme(scheme, schemeReason);
    List<NodeProto> nodes = graph.getNodeList();
    long opset = defaultOpset(model);

    LinearLayer[] layers = new LinearLayer[nodes.size()];
    for (int i = 0; i < nodes.size(); i++) {
      NodeProto node = nodes.get(i);
      if (!LinearLayer.isCandidate(node)) {
        continue;
      }
      String reason =
          opset < MINIMUM_OPSET
              ? "DynamicQuantizeLinear needs ONNX opset "
                  + MINIMUM_OPSET
                  + ", the model imports opset "
                  + opset
              : LinearLayer.reasonToLeave(node, index, minimumWeightElements);
      if (reason == null) {
        layers[i] = LinearLayer.of(node, index, minimumWeightElements);
      } else {
        report.left(node, reason);
      }
    }

    boolean[] tables = new boolean[nodes.size()];
    for (int i = 0; i < nodes.size(); i++) {
      NodeProto node = nodes.get(i);
      if (node.getOpType().equals("Gather") && (node.getDomain().isEmpty() || node.getDomain().equals("ai.onnx"))
          && index.constant(node.getInput(0)) != null) {
        String reason = opset < MINIMUM_OPSET
            ? "ONNX opset " + opset + " (quantized embedding tables need " + MINIMUM_OPSET + ")"
            : reasonToLeaveTable(node, index);
        if (reason == null) {
          tables[i] = true;
        } else {
          report.left(node, reason);
        }
      }
    }

    Map<String, Integer> quantizedReaders = new HashMap<>();
    for (LinearLayer layer : layers) {
      if (layer != null) {
        quantizedReaders.merge(layer.activation, 1, Integer::sum);
      }
    }

    GraphProto.Builder rewritten = graph.toBuilder().clearNode();
    Map<String, String[]> quantizedActivations = new HashMap<>();
    Map<String, String[]> quantizedWeights = new HashMap<>();
    List<TensorProto> addedInitializers = new ArrayList<>();
    Set<String> replacedInitializers = new HashSet<>();
    Map<String, String[]> quantizedTables = new HashMap<>();
    // u8u8's one zero point (128) for every weight, added with the first quantized weight.
    String[] weightZeroPoint = new String[1];
    for (int i = 0; i < nodes.size(); i++) {
      LinearLayer layer = layers[i];
      if (tables[i]) {
        NodeProto gather = nodes.get(i);
        String[] table = quantizedTables.computeIfAbsent(gather.getInput(0),
            name -> quantizeTable(index.constant(name), index, addedInitializers));
        replacedInitializers.add(gather.getInput(0));
        String output = gather.getOutput(0);
        String prefix = gather.getName().isEmpty() ? output : gather.getName();
        String rows = index.uniqueName(output + "_quantized");
        String converted = index.uniqueName(output + "_quantized_float");
        String scales = index.uniqueName(output + "_scales");
        rewritten.addNode(gather.toBuilder().setInput(0, table[0]).setOutput(0, rows).build());
        rewritten.addNode(gather.toBuilder().setName(index.uniqueName(prefix + "/ScaleGather"))
            .setInput(0, table[1]).setOutput(0, scales).build());
        rewritten.addNode(castToFloat(index.uniqueName(prefix + "/Cast"), rows, converted));
        rewritten.addNode(node(index.uniqueName(prefix + "/Mul"), "Mul", List.of(converted, scales), List.of(output)));
        report.rewrote(gather, "Gather of float table " + gather.getInput(0) + " "
            + index.constant(gather.getInput(0)).getDimsList() + " -> int8 table (per-row scale) + Gather + Cast + Mul");
        continue;
      }
      if (layer == null) {
        rewritten.addNode(nodes.get(i));
        continue;
      }
      boolean shared = quantizedReaders.get(layer.activation) > 1;
      String[] activation = shared ? quantizedActivations.get(layer.activation) : null;
      if (activation == null) {
        String base = shared ? layer.activation : layer.namePrefix() + "/input";
        activation =
            new String[] {
              index.uniqueName(base + "_quantized"),
              index.uniqueName(base + "_scale"),
              index.uniqueName(base + "_zero_point")
            };
        rewritten.addNode(
            node(
                index.uniqueName(base + "/DynamicQuantizeLinear"),
                "DynamicQuantizeLinear",
                List.of(layer.activation),
                List.of(activation)));
        if (shared) {
          quantizedActivations.put(layer.activation, activation);
        }
      }
      String weightKey =
          layer.weight.getName()
              + (layer.weightTransposed ? "^T" : "")
              + (layer.alpha != 1f ? "*" + layer.alpha : "");
      String[] weight = quantizedWeights.get(weightKey);
      if (weight == null) {
        weight = quantizeWeight(layer, index, addedInitializers);
        quantizedWeights.put(weightKey, weight);
      }
      List<String> matMulInputs = new ArrayList<>(List.of(activation[0], weight[0], activation[2]));
      if (scheme.zeroPoint() != 0) {
        if (weightZeroPoint[0] == null) {
          weightZeroPoint[0] = index.uniqueName("weight_zero_point");
          addedInitializers.add(Tensors.byteTensor(weightZeroPoint[0], scheme.weightType(),
              new byte[] {(byte) scheme.zeroPoint()}));
        }
        matMulInputs.add(weightZeroPoint[0]);
      }
      replacedInitializers.add(layer.weight.getName());

      String prefix = layer.namePrefix();
      String accumulated = index.uniqueName(layer.output + "_int32");
      String converted = index.uniqueName(layer.output + "_int32_float");
      String scales = index.uniqueName(layer.output + "_scales");
      boolean hasBias = layer.constantBias != null || layer.variableBias != null;
      String scaled = hasBias ? index.uniqueName(layer.output + "_unbiased") : layer.output;
      rewritten.addNode(
          node(
              index.uniqueName(prefix + "/MatMulInteger"),
              "MatMulInteger",
              matMulInputs,
              List.of(accumulated)));
      rewritten.addNode(castToFloat(index.uniqueName(prefix + "/Cast"), accumulated, converted));
      // Activation scale first: ORT's fusion takes the scale Mul's inputs as (A_scale, B_scale).
      rewritten.addNode(
          node(
              index.uniqueName(prefix + "/ScaleMul"),
              "Mul",
              List.of(activation[1], weight[1]),
              List.of(scales)));
      rewritten.addNode(
          node(
              index.uniqueName(prefix + "/Mul"),
              "Mul",
              List.of(converted, scales),
              List.of(scaled)));
      if (hasBias) {
        String bias = layer.variableBias != null ? layer.variableBias : layer.reusableBias;
        if (bias == null) {
          bias = index.uniqueName(prefix + "_bias");
          addedInitializers.add(
              Tensors.floatTensor(bias, layer.constantBias, layer.constantBias.length));
          replacedInitializers.add(layer.node.getInput(2));
        }
        rewritten.addNode(
            node(
                index.uniqueName(prefix + "/Add"),
                "Add",
                List.of(scaled, bias),
                List.of(layer.output)));
      }
      report.rewrote(
          layer.node,
          layer.describe()
              + " -> DynamicQuantizeLinear"
              + (shared ? " (shared)" : "")
              + " + MatMulInteger (" + scheme.shortName() + ": uint8 x "
              + (scheme.weightType() == OnnxElementType.UINT8 ? "uint8" : "int8") + ", "
              + (perChannel ? "per-channel" : "per-tensor")
              + " weight scale) + Cast + Mul"
              + (hasBias ? " + Add (bias)" : ""));
    }

    removeUnused(rewritten, replacedInitializers, index);
    rewritten.addAllInitializer(addedInitializers);
    GraphProto after = rewritten.build();
    ModelProto result = model.toBuilder().setGraph(after).build();
    return new CompressedModel(new OnnxModel(result), report.build(graph, after));
  }

  /** Adds the 8-bit weight and its scale; returns their names. */
  private String[] quantizeWeight(LinearLayer layer, GraphIndex index, List<TensorProto> added) {
    int k = layer.inputFeatures;
    int n = layer.outputFeatures;
    Int8Weights weights = new Int8Weights(scheme, perChannel, layer.weightByInputFeature(), k, n);
    String base = layer.weight.getName() + (layer.weightTransposed ? "_transposed" : "");
    String quantizedName = index.uniqueName(base + "_quantized");
    String scaleName = index.uniqueName(base + "_scale");
    added.add(Tensors.byteTensor(quantizedName, scheme.weightType(), weights.stored(), k, n));
    added.add(
        perChannel
            ? Tensors.floatTensor(scaleName, weights.scales(), n)
            : Tensors.floatTensor(scaleName, weights.scales()));
    return new String[] {quantizedName, scaleName};
  }

  /** Why a Gather's constant table stays float, or null to quantize it. */
  private String reasonToLeaveTable(NodeProto gather, GraphIndex index) {
    TensorProto table = index.constant(gather.getInput(0));
    for (AttributeProto attribute : gather.getAttributeList()) {
      if (attribute.getName().equals("axis") && attribute.getI() != 0) {
        return "gathers along axis " + attribute.getI() + ", not rows (axis 0)";
      }
    }
    if (table.getDataType() != OnnxElementType.FLOAT.onnxNumber() || table.getDimsCount() != 2) {
      return "the table is not a float matrix";
    }
    if (Tensors.isExternal(table)) {
      return "the table is stored as external data";
    }
    if (Tensors.elementCount(table) < minimumWeightElements) {
      return "the table has " + Tensors.elementCount(table) + " elements, fewer than " + minimumWeightElements;
    }
    if (index.isUsedBySubgraph(table.getName()) || index.isGraphOutput(table.getName())) {
      return "the table is also read outside the main graph's Gathers";
    }
    for (NodeProto reader : index.consumers(table.getName())) {
      boolean rowGather = reader.getOpType().equals("Gather") && reader.getInput(0).equals(table.getName())
          && reader.getAttributeList().stream().noneMatch(a -> a.getName().equals("axis") && a.getI() != 0);
      if (!rowGather) {
        return "the table is also read by " + reader.getOpType() + " " + reader.getName();
      }
    }
    return null;
  }

  /** Adds the int8 table and its [rows, 1] scales; returns their names. */
  private static String[] quantizeTable(TensorProto table, GraphIndex index, List<TensorProto> added) {
    int rows = (int) table.getDims(0);
    int width = (int) table.getDims(1);
    float[] values = Tensors.floats(table);
    float[] scales = new float[rows];
    byte[] quantized = new byte[values.length];
    for (int row = 0; row < rows; row++) {
      float largest = 0;
      for (int column = 0; column < width; column++) {
        largest = Math.max(largest, Math.abs(values[row * width + column]));
      }
      // Symmetric over [-127, 127], as the weights.
      scales[row] = largest == 0 ? 1f : largest / 127f;
      for (int column = 0; column < width; column++) {
        long value = Math.round((double) values[row * width + column] / scales[row]);
        quantized[row * width + column] = (byte) Math.max(-127, Math.min(127, value));
      }
    }
    String quantizedName = index.uniqueName(table.getName() + "_quantized");
    String scaleName = index.uniqueName(table.getName() + "_row_scales");
    added.add(Tensors.byteTensor(quantizedName, OnnxElementType.INT8, quantized, rows, width));
    added.add(Tensors.floatTensor(scaleName, scales, rows, 1));
    return new String[] {quantizedName, scaleName};
  }

  /** Drops replaced initializers that nothing reads any more; others stay as they were. */
  static void removeUnused(GraphProto.Builder graph, Set<String> candidates, GraphIndex index) {
    Set<String> read = new HashSet<>();
    for (NodeProto node : graph.getNodeList()) {
      read.addAll(node.getInputList());
    }
    graph.getOutputList().forEach(output -> read.add(output.getName()));
    List<TensorProto> kept = new ArrayList<>();
    for (TensorProto initializer : graph.getInitializerList()) {
      String name = initializer.getName();
      if (!candidates.contains(name) || read.contains(name) || index.isUsedBySubgraph(name)) {
        kept.add(initializer);
      }
    }
    graph.clearInitializer().addAllInitializer(kept);
  }

  private static NodeProto castToFloat(String name, String input, String output) {
    return node(name, "Cast", List.of(input), List.of(output)).toBuilder()
        .addAttribute(
            AttributeProto.newBuilder()
                .setName("to")
                .setType(AttributeProto.AttributeType.INT)
                .setI(OnnxElementType.FLOAT.onnxNumber()))
        .build();
  }

  static NodeProto node(String name, String opType, List<String> inputs, List<String> outputs) {
    return NodeProto.newBuilder()
        .setName(name)
        .setOpType(opType)
        .addAllInput(inputs)
        .addAllOutput(outputs)
        .build();
  }

  static long defaultOpset(ModelProto model) {
    for (OperatorSetIdProto opset : model.getOpsetImportList()) {
      if (opset.getDomain().isEmpty() || opset.getDomain().equals("ai.onnx")) {
        return opset.getVersion();
      }
    }
    return 0;
  }
}
