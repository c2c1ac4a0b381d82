package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A copy of a model with one more output, {@link #OUTPUT}: float [batch, units], for each row the
 * squared activations of every prunable chain's hidden units (the value its second linear reads),
 * summed over the row's tokens, the chains side by side in the order of {@link #chains()}. Summed
 * over a table (a Spark job does it), these are the sums {@link StructuredPruner#withUnitEnergy}
 * scores units by.
 *
 * <p>Hidden values are taken as [batch, units] or [batch, tokens, units]. When the model has an
 * input named {@code attention_mask} (a text encoder), the hidden values are [batch, tokens, units]
 * and padded tokens (mask 0) are left out, so a text's sums do not depend on the batch it ran in.
 */
public final class UnitEnergyProbe {
  /** The name of the added output. */
  public static final String OUTPUT = "sparkinfer_unit_energy";

  private static final String PREFIX = "sparkinfer_energy_";
  private static final String ATTENTION_MASK = "attention_mask";

  private final OnnxModel model;
  private final Map<String, Integer> units;

  private UnitEnergyProbe(OnnxModel model, Map<String, Integer> units) {
    this.model = model;
    this.units = units;
  }

  /**
   * The probe of {@code model}.
   *
   * @throws IllegalArgumentException when the model has no chain {@link StructuredPruner} can prune
   */
  public static UnitEnergyProbe of(OnnxModel model) {
    ModelProto proto = model.proto();
    GraphProto graph = proto.getGraph();
    List<PrunableChain> chains = PrunableChain.all(graph);
    if (chains.isEmpty()) {
      throw new IllegalArgumentException("The model has no linear → elementwise → linear chain to prune,"
          + " so there are no hidden units to measure");
    }
    boolean axesAsInputs = Int8Quantizer.defaultOpset(proto) >= 13;
    boolean masked = graph.getInputList().stream().anyMatch(input -> input.getName().equals(ATTENTION_MASK));
    GraphProto.Builder result = graph.toBuilder();
    List<NodeProto> nodes = new ArrayList<>();
    String mask = null;
    if (masked) {
      nodes.add(PoolingHead.cast(ATTENTION_MASK, PREFIX + "mask"));
      mask = reshape(result, nodes, PREFIX + "mask", PREFIX + "mask3", 1);
    }
    Map<String, Integer> units = new LinkedHashMap<>();
    List<String> perChain = new ArrayList<>();
    for (int c = 0; c < chains.size(); c++) {
      PrunableChain chain = chains.get(c);
      String name = PREFIX + c + "_";
      String activations = chain.activations;
      nodes.add(Int8Quantizer.node(name + "square", "Mul", List.of(activations, activations), List.of(name + "squared")));
      String squared = reshape(result, nodes, name + "squared", name + "squared3", chain.hidden);
      if (mask != null) {
        nodes.add(Int8Quantizer.node(name + "mask", "Mul", List.of(squared, mask), List.of(name + "masked")));
        squared = name + "masked";
      }
      nodes.add(PoolingHead.reduceSum(result, axesAsInputs, name + "sum", squared, name + "summed", 0));
      perChain.add(name + "summed");
      units.put(chain.w1, chain.hidden);
    }
    if (perChain.size() == 1) {
      nodes.add(Int8Quantizer.node(PREFIX + "output", "Identity", perChain, List.of(OUTPUT)));
    } else {
      nodes.add(Int8Quantizer.node(PREFIX + "concat", "Concat", perChain, List.of(OUTPUT)).toBuilder()
          .addAttribute(ai.onnx.proto.OnnxMl.AttributeProto.newBuilder().setName("axis")
              .setType(ai.onnx.proto.OnnxMl.AttributeProto.AttributeType.INT).setI(1))
          .build());
    }
    result.addAllNode(nodes);
    int total = units.values().stream().mapToInt(Integer::intValue).sum();
    result.addOutput(ValueInfoProto.newBuilder().setName(OUTPUT).setType(TypeProto.newBuilder()
        .setTensorType(TypeProto.Tensor.newBuilder().setElemType(OnnxElementType.FLOAT.onnxNumber())
            .setShape(TensorShapeProto.newBuilder()
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                .addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(total))))));
    return new UnitEnergyProbe(new OnnxModel(proto.toBuilder().setGraph(result).build()), java.util.Collections.unmodifiableMap(units));
  }

  /** [batch, rest..., last] → [batch, -1, last], so both ranks reduce over axis 1. */
  private static String reshape(GraphProto.Builder graph, List<NodeProto> nodes, String input, String output,
      long last) {
    String shape = output + "_shape";
    graph.addInitializer(OnnxProtos.tensor(shape, new long[] {0, -1, last}, new long[] {3}));
    nodes.add(Int8Quantizer.node(output + "_reshape", "Reshape", List.of(input, shape), List.of(output)));
    return output;
  }

  /** The model with the added output; its other outputs are the original's. */
  public OnnxModel model() {
    return model;
  }

  /** The chains measured, by first weight, in the order of their units in {@link #OUTPUT}. */
  public List<String> chains() {
    return List.copyOf(units.keySet());
  }

  /** Hidden units of {@code chain}. */
  public int units(String chain) {
    return units.get(chain);
  }

  /** The length of {@link #OUTPUT}'s rows. */
  public int totalUnits() {
    return units.values().stream().mapToInt(Integer::intValue).sum();
  }

  /** Sums of {@link #OUTPUT} over many rows, cut into one array per chain for the pruner. */
  public Map<String, double[]> split(double[] sums) {
    if (sums.length != totalUnits()) {
      throw new IllegalArgumentException("Got " + sums.length + " sums; the probe measures " + totalUnits() + " units");
    }
    Map<String, double[]> result = new LinkedHashMap<>();
    int at = 0;
    for (String chain : units.keySet()) {
      int count = units.get(chain);
      result.put(chain, java.util.Arrays.copyOfRange(sums, at, at + count));
      at += count;
    }
    return result;
  }
}
