package io.github.sparkinfer.compression;

import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Compresses ONNX models in Java, rewriting the graph: what ONNX Runtime's Python quantization
 * tools do, for JVM users. Everything a rewrite does not touch stays as it was: opsets, metadata,
 * doc strings, node and value names, external data references, fields of newer ONNX versions.
 *
 * <pre>{@code
 * ModelCompressor compressor = ModelCompressor.builder()
 *     .precision(Precision.INT8)
 *     .perChannel(true)
 *     .build();
 * CompressedModel compressed = compressor.compress(OnnxModel.read(Path.of("model.onnx")));
 * compressed.model().writeTo(Path.of("model.int8.onnx"));
 * System.out.print(compressed.report());
 * }</pre>
 *
 * <ul>
 *   <li>{@link Precision#INT8}: MatMul and Gemm with constant 2-D float32 weights become
 *       DynamicQuantizeLinear + MatMulInteger (uint8 activations x symmetric 8-bit weights stored as
 *       the {@link Int8Scheme} says, by default the fastest one exact on this CPU) + Cast +
 *       Mul (+ Add for Gemm's bias), the subgraph ONNX Runtime's CPU provider fuses, with the bias
 *       Add that follows, into DynamicQuantizeMatMul or MatMulIntegerToFloat.
 *   <li>{@link Precision#FLOAT16}: float32 tensors become float16 except graph inputs and outputs
 *       and operators without float16 kernels (see {@link #builder()}'s {@code keepFloat32}).
 *   <li>{@link Precision#INT4}: MatMul and Gemm with constant 2-D float32 weights whose K is a
 *       multiple of the block size become {@code com.microsoft MatMulNBits} (4 bits, asymmetric
 *       blocks along K).
 * </ul>
 *
 * <p>Immutable and thread-safe; {@link #compress} leaves its argument unchanged.
 */
public final class ModelCompressor {
  /**
   * Weights with fewer values stay float by default: for so few multiplications (and bytes), the
   * four nodes and the pass over the activation that quantization adds are not worth it.
   */
  public static final long DEFAULT_MINIMUM_WEIGHT_ELEMENTS = 4096;

  public static final int DEFAULT_BLOCK_SIZE = 32;

  /**
   * Version of the graphs this compressor writes: raised whenever the same input and settings
   * would give another graph, so that caches of compressed files (named with it) are not reused
   * across versions. 2: int8 also quantizes embedding tables. 3: int8 weights follow an {@link
   * Int8Scheme}, chosen for the CPU unless set.
   */
  public static final int OUTPUT_VERSION = 3;

  private final Precision precision;
  private final boolean perChannel;
  private final Int8Scheme int8Scheme;
  private final int blockSize;
  private final long minimumWeightElements;
  private final Set<String> keepFloat32;

  private ModelCompressor(Builder builder) {
    this.precision = builder.precision;
    this.perChannel = builder.perChannel;
    this.int8Scheme = builder.int8Scheme;
    this.blockSize = builder.blockSize;
    this.minimumWeightElements = builder.minimumWeightElements;
    this.keepFloat32 = Set.copyOf(builder.keepFloat32);
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The compressed model and what was rewritten. A model with nothing to rewrite comes back equal
   * to the input, with a report saying why.
   *
   * @throws IllegalArgumentException when the model cannot be compressed at this precision, for
   *     example float16 for a model with subgraphs; the message says what and why
   */
  public CompressedModel compress(OnnxModel model) {
    Objects.requireNonNull(model, "model");
    switch (precision) {
      case INT8:
        return new Int8Quantizer(perChannel, minimumWeightElements, resolvedInt8Scheme(), int8SchemeReason())
            .quantize(model.proto());
      case FLOAT16:
        return new Float16Converter(keepFloat32).convert(model.proto());
      case INT4:
        return new Int4Quantizer(blockSize, minimumWeightElements).quantize(model.proto());
      default:
        throw new AssertionError(precision);
    }
  }

  public Precision precision() {
    return precision;
  }

  public boolean perChannel() {
    return perChannel;
  }

  /** INT8: the scheme set on the builder; empty means chosen for this CPU when compressing. */
  public Optional<Int8Scheme> int8Scheme() {
    return Optional.ofNullable(int8Scheme);
  }

  /** INT8: the scheme {@link #compress} uses in this JVM: the one set, else the one for this CPU. */
  public Int8Scheme resolvedInt8Scheme() {
    return int8Scheme != null ? int8Scheme : Int8Scheme.forThisProcessor();
  }

  private String int8SchemeReason() {
    return int8Scheme != null
        ? "set explicitly; CPU " + ProcessorDescription.current()
        : "chosen for this CPU, " + Int8KernelProbe.result();
  }

  public int blockSize() {
    return blockSize;
  }

  public long minimumWeightElements() {
    return minimumWeightElements;
  }

  public Set<String> keepFloat32() {
    return keepFloat32;
  }

  @Override
  public String toString() {
    switch (precision) {
      case INT8:
        return "ModelCompressor{int8, "
            + (perChannel ? "per-channel" : "per-tensor")
            + ", scheme="
            + (int8Scheme == null ? "auto" : int8Scheme.shortName())
            + ", minimumWeightElements="
            + minimumWeightElements
            + "}";
      case INT4:
        return "ModelCompressor{int4, blockSize="
            + blockSize
            + ", minimumWeightElements="
            + minimumWeightElements
            + "}";
      default:
        return "ModelCompressor{fp16, keepFloat32=" + new TreeSet<>(keepFloat32) + "}";
    }
  }

  /** Not thread-safe. */
  public static final class Builder {
    private Precision precision;
    private boolean perChannel;
    private boolean perChannelSet;
    private Int8Scheme int8Scheme;
    private int blockSize = DEFAULT_BLOCK_SIZE;
    private boolean blockSizeSet;
    private long minimumWeightElements = DEFAULT_MINIMUM_WEIGHT_ELEMENTS;
    private boolean minimumWeightElementsSet;
    private final Set<String> keepFloat32 = new TreeSet<>();

    private Builder() {}

    /** Required. */
    public Builder precision(Precision precision) {
      this.precision = Objects.requireNonNull(precision, "precision");
      return this;
    }

    /**
     * INT8 only: one weight scale per output column instead of one per weight; more accurate, as
     * fast. Default false, as ORT's quantizer.
     */
    public Builder perChannel(boolean perChannel) {
      this.perChannel = perChannel;
      this.perChannelSet = true;
      return this;
    }

    /**
     * INT8 only: how weights are stored (see {@link Int8Scheme}); null, the default, chooses when
     * compressing, for the CPU the compression runs on: u8s8 where ONNX Runtime's u8 x s8 kernel is
     * exact there, u8u8 elsewhere. Set it when the file will run on other CPUs than the one that
     * writes it: u8u8 is exact on every CPU.
     */
    public Builder int8Scheme(Int8Scheme scheme) {
      this.int8Scheme = scheme;
      return this;
    }

    /**
     * INT4 only: weights quantized per block of this many values along K; a power of two, at least
     * 16 (ORT's MatMulNBits). Smaller blocks are more accurate and a little larger. Default {@value
     * #DEFAULT_BLOCK_SIZE}.
     */
    public Builder blockSize(int blockSize) {
      if (blockSize < 16 || Integer.bitCount(blockSize) != 1) {
        throw new IllegalArgumentException(
            "Block size must be a power of two of at least 16 (ORT's MatMulNBits takes 16, 32, 64,"
                + " 128, ...), got "
                + blockSize);
      }
      this.blockSize = blockSize;
      this.blockSizeSet = true;
      return this;
    }

    /**
     * INT8 and INT4: weights with fewer values stay float. Default {@value
     * #DEFAULT_MINIMUM_WEIGHT_ELEMENTS}; 0 quantizes every weight.
     */
    public Builder minimumWeightElements(long minimumWeightElements) {
      if (minimumWeightElements < 0) {
        throw new IllegalArgumentException(
            "minimumWeightElements must be >= 0, got " + minimumWeightElements);
      }
      this.minimumWeightElements = minimumWeightElements;
      this.minimumWeightElementsSet = true;
      return this;
    }

    /**
     * FLOAT16 only: more ONNX operator types to keep computing in float32, beside the defaults
     * (operators without float16 kernels in ORT's CUDA EP: Range, RoiAlign, GridSample, EyeLike,
     * NonMaxSuppression, Clip before opset 12, CumSum before opset 14; QuantizeLinear,
     * DequantizeLinear, DynamicQuantizeLinear; random sampling; every operator outside ONNX's own
     * domain). For example {@code "Pow"} when squares of large activations overflow float16.
     */
    public Builder keepFloat32(String... operatorTypes) {
      for (String operatorType : operatorTypes) {
        Objects.requireNonNull(operatorType, "operatorType");
        if (operatorType.isEmpty()) {
          throw new IllegalArgumentException("Operator type must not be empty");
        }
        keepFloat32.add(operatorType);
      }
      return this;
    }

    /**
     * @throws IllegalStateException when no precision is set, or an option is set that the
     *     precision does not use (it would silently do nothing)
     */
    public ModelCompressor build() {
      if (precision == null) {
        throw new IllegalStateException(
            "precision is required: Precision.INT8, Precision.FLOAT16 or Precision.INT4");
      }
      if (perChannelSet && precision != Precision.INT8) {
        throw new IllegalStateException(
            "perChannel applies to INT8 only, not " + precision + ": remove it");
      }
      if (int8Scheme != null && precision != Precision.INT8) {
        throw new IllegalStateException(
            "int8Scheme applies to INT8 only, not " + precision + ": remove it");
      }
      if (blockSizeSet && precision != Precision.INT4) {
        throw new IllegalStateException(
            "blockSize applies to INT4 only, not " + precision + ": remove it");
      }
      if (minimumWeightElementsSet && precision == Precision.FLOAT16) {
        throw new IllegalStateException(
            "minimumWeightElements applies to INT8 and INT4, not FLOAT16: remove it");
      }
      if (!keepFloat32.isEmpty() && precision != Precision.FLOAT16) {
        throw new IllegalStateException(
            "keepFloat32 applies to FLOAT16 only, not " + precision + ": remove it");
      }
      return new ModelCompressor(this);
    }
  }
}
