package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/** What a {@link ModelCompressor} rewrote, and what it left and why. Immutable. */
public final class CompressionReport {
  private final Precision precision;
  private final List<Entry> rewritten;
  private final List<Entry> left;
  private final Map<String, Integer> operatorsBefore;
  private final Map<String, Integer> operatorsAfter;
  private final long initializerBytesBefore;
  private final long initializerBytesAfter;
  private final Int8Scheme int8Scheme;
  private final String int8SchemeReason;

  private CompressionReport(
      Precision precision,
      Int8Scheme int8Scheme,
      String int8SchemeReason,
      List<Entry> rewritten,
      List<Entry> left,
      GraphProto before,
      GraphProto after) {
    this.precision = precision;
    this.int8Scheme = int8Scheme;
    this.int8SchemeReason = int8SchemeReason;
    this.rewritten = List.copyOf(rewritten);
    this.left = List.copyOf(left);
    this.operatorsBefore = operatorCounts(before);
    this.operatorsAfter = operatorCounts(after);
    this.initializerBytesBefore = initializerBytes(before);
    this.initializerBytesAfter = initializerBytes(after);
  }

  public Precision precision() {
    return precision;
  }

  /** INT8 only: how the weights are stored (see {@link Int8Scheme}); empty for other precisions. */
  public Optional<Int8Scheme> int8Scheme() {
    return Optional.ofNullable(int8Scheme);
  }

  /** INT8 only: why that scheme, for example what the probe of this CPU found; else empty. */
  public String int8SchemeReason() {
    return int8SchemeReason == null ? "" : int8SchemeReason;
  }

  /** What was rewritten, in graph order: nodes, and for float16 also values and initializers. */
  public List<Entry> rewritten() {
    return rewritten;
  }

  /** Nodes the precision applies to that were left as they are, each with the reason. */
  public List<Entry> left() {
    return left;
  }

  /** Node counts of the main graph by operator ("domain:type" outside ONNX's own domain). */
  public Map<String, Integer> operatorsBefore() {
    return operatorsBefore;
  }

  public Map<String, Integer> operatorsAfter() {
    return operatorsAfter;
  }

  /** Bytes of initializer data stored in the model file (external data not counted). */
  public long initializerBytesBefore() {
    return initializerBytesBefore;
  }

  public long initializerBytesAfter() {
    return initializerBytesAfter;
  }

  /** Several lines: totals, operator count changes, then every rewritten and left entry. */
  @Override
  public String toString() {
    StringBuilder text = new StringBuilder();
    text.append(
        String.format(
            Locale.ROOT,
            "%s: rewrote %d, left %d; initializers %.1f MB -> %.1f MB%n",
            precision.shortName(),
            rewritten.size(),
            left.size(),
            initializerBytesBefore / 1e6,
            initializerBytesAfter / 1e6));
    if (int8Scheme != null) {
      text.append("  int8 scheme ").append(int8Scheme.shortName()).append(": ").append(int8SchemeReason)
          .append(System.lineSeparator());
    }
    Set<String> operators = new TreeSet<>(operatorsBefore.keySet());
    operators.addAll(operatorsAfter.keySet());
    for (String operator : operators) {
      int before = operatorsBefore.getOrDefault(operator, 0);
      int after = operatorsAfter.getOrDefault(operator, 0);
      if (before != after) {
        text.append(String.format(Locale.ROOT, "  %s: %d -> %d%n", operator, before, after));
      }
    }
    rewritten.forEach(
        entry -> text.append("  rewrote ").append(entry).append(System.lineSeparator()));
    left.forEach(entry -> text.append("  left ").append(entry).append(System.lineSeparator()));
    return text.toString();
  }

  private static Map<String, Integer> operatorCounts(GraphProto graph) {
    Map<String, Integer> counts = new TreeMap<>();
    for (NodeProto node : graph.getNodeList()) {
      String type =
          LinearLayer.isDefaultDomain(node)
              ? node.getOpType()
              : node.getDomain() + ":" + node.getOpType();
      counts.merge(type, 1, Integer::sum);
    }
    return Collections.unmodifiableMap(counts);
  }

  private static long initializerBytes(GraphProto graph) {
    long bytes = 0;
    for (TensorProto initializer : graph.getInitializerList()) {
      bytes += Tensors.storedBytes(initializer);
    }
    return bytes;
  }

  /** One rewritten or left node, value or initializer. */
  public static final class Entry {
    private final String name;
    private final String operatorType;
    private final String detail;

    Entry(String name, String operatorType, String detail) {
      this.name = Objects.requireNonNull(name, "name");
      this.operatorType = Objects.requireNonNull(operatorType, "operatorType");
      this.detail = Objects.requireNonNull(detail, "detail");
    }

    /** The node's name (its first output when it has none), or the value's. */
    public String name() {
      return name;
    }

    /** The node's operator type; empty for a value or initializer. */
    public String operatorType() {
      return operatorType;
    }

    /** What was done, or why nothing was. */
    public String detail() {
      return detail;
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof Entry
          && ((Entry) other).name.equals(name)
          && ((Entry) other).operatorType.equals(operatorType)
          && ((Entry) other).detail.equals(detail);
    }

    @Override
    public int hashCode() {
      return Objects.hash(name, operatorType, detail);
    }

    @Override
    public String toString() {
      return (operatorType.isEmpty() ? "" : operatorType + " ") + name + ": " + detail;
    }
  }

  /** Collects entries while a rewrite runs. */
  static final class Collector {
    private final Precision precision;
    private final List<Entry> rewritten = new ArrayList<>();
    private final List<Entry> left = new ArrayList<>();
    private Int8Scheme int8Scheme;
    private String int8SchemeReason;

    Collector(Precision precision) {
      this.precision = precision;
    }

    Collector int8Scheme(Int8Scheme scheme, String reason) {
      this.int8Scheme = scheme;
      this.int8SchemeReason = reason;
      return this;
    }

    void rewrote(NodeProto node, String detail) {
      rewritten.add(new Entry(nameOf(node), node.getOpType(), detail));
    }

    void rewroteValue(String name, String detail) {
      rewritten.add(new Entry(name, "", detail));
    }

    void left(NodeProto node, String reason) {
      left.add(new Entry(nameOf(node), node.getOpType(), reason));
    }

    CompressionReport build(GraphProto before, GraphProto after) {
      return new CompressionReport(precision, int8Scheme, int8SchemeReason, rewritten, left, before, after);
    }

    private static String nameOf(NodeProto node) {
      return node.getName().isEmpty() && node.getOutputCount() > 0
          ? node.getOutput(0)
          : node.getName();
    }
  }
}
