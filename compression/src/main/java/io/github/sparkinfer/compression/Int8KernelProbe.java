package io.github.sparkinfer.compression;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Asks this process's ONNX Runtime, once, how exact its uint8 x int8 matrix multiplication is on
 * this CPU: a MatMulInteger of activations that are all 255 with constant int8 weights, K = 64.
 * Some weight columns are all 127, whose exact sums (255 x 127 x 64) overflow any 16-bit pair sum:
 * a kernel that adds pairs of products in saturating 16-bit lanes (MLAS's AVX2 and AVX-512 kernels
 * without VNNI) returns about half; VNNI, AMX and ARM kernels return the exact value. Other
 * columns keep each pair of rows 2i, 2i+1 at 128 in magnitude together (127 + 1, 1 + 127, -127 -
 * 1) while other pairings of the same rows (2i+1 with 2i+2, i with i+2) reach 254: they are exact
 * only where the kernel's 16-bit lanes add rows 2i and 2i+1, which u8s8-paired relies on.
 *
 * <p>Run by behaviour rather than by CPU flags so that the answer is right wherever the flags
 * mislead: an emulator, a virtual machine that hides a feature, an operating system without
 * /proc/cpuinfo, another ONNX Runtime version's kernel choice. Both the one-row (GEMV) and the
 * many-row (GEMM) kernels are probed, with the weights pre-packed as for a real model.
 */
public final class Int8KernelProbe {
  private static final int DEPTH = 64;
  private static final int COLUMNS = 16;
  /** Columns c with c % 4 == 0 are all 127; the others hold the pair patterns. */
  private static final int PATTERNS = 4;
  private static final int[] ROWS = {1, 6};
  private static volatile Result result;

  private Int8KernelProbe() {}

  /** This process's answer, probed on first use. */
  public static Result result() {
    Result known = result;
    if (known == null) {
      synchronized (Int8KernelProbe.class) {
        known = result;
        if (known == null) {
          known = probeOnLargeStack();
          result = known;
        }
      }
    }
    return known;
  }

  /**
   * ONNX Runtime 1.29's environment creation, which the probe may be first to do, needs stack in
   * proportion to the JVM's command line and overflows a default thread stack past about 4 KB of
   * it (a native crash); the stack is reserved address space, few pages are used.
   */
  private static Result probeOnLargeStack() {
    Result[] probed = new Result[1];
    Thread prober = new Thread(null, () -> probed[0] = probe(), "sparkinfer-int8-kernel-probe", 256L << 20);
    prober.setDaemon(true);
    prober.start();
    boolean interrupted = false;
    while (true) {
      try {
        prober.join();
        break;
      } catch (InterruptedException e) {
        // The answer is needed by every later caller: finish, then restore the interrupt.
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    return probed[0] != null ? probed[0]
        : new Result(false, false, "the probe thread ended without an answer, so the scheme exact on every CPU is used",
            ProcessorDescription.current());
  }

  private static Result probe() {
    ProcessorDescription processor = ProcessorDescription.current();
    byte[] weights = weights();
    long[] exact = new long[COLUMNS];
    for (int k = 0; k < DEPTH; k++) {
      for (int column = 0; column < COLUMNS; column++) {
        exact[column] += 255L * weights[k * COLUMNS + column];
      }
    }
    try {
      OrtEnvironment environment = OrtEnvironment.getEnvironment();
      try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
        options.setIntraOpNumThreads(1);
        try (OrtSession session = environment.createSession(model(weights).toByteArray(), options)) {
          boolean fullRangeExact = true;
          boolean pairsExact = true;
          long[] observed = null;
          for (int rows : ROWS) {
            long[] sums = firstRowSums(environment, session, rows);
            observed = observed == null ? sums : observed;
            for (int column = 0; column < COLUMNS; column++) {
              if (column % PATTERNS == 0) {
                fullRangeExact &= sums[column] == exact[column];
              } else {
                pairsExact &= sums[column] == exact[column];
              }
            }
          }
          String detail = "uint8 255 x int8 127 summed over " + DEPTH + " gave " + observed[0] + ", exactly "
              + exact[0] + "; pairs of rows limited to 128 gave " + observed[1] + ", " + observed[2] + ", "
              + observed[3] + ", exactly " + exact[1] + ", " + exact[2] + ", " + exact[3] + " (for "
              + Arrays.toString(ROWS) + " rows)";
          return new Result(fullRangeExact, pairsExact, detail, processor);
        }
      }
    } catch (OrtException | RuntimeException | LinkageError e) {
      return new Result(false, false, "the probe could not run (" + e + "), so the scheme exact on every CPU is used",
          processor);
    }
  }

  /** Columns of 127s, and the pair patterns: 127,1,1,127 / 127,1 / -127,-1 repeated down K. */
  private static byte[] weights() {
    byte[] weights = new byte[DEPTH * COLUMNS];
    for (int k = 0; k < DEPTH; k++) {
      for (int column = 0; column < COLUMNS; column++) {
        int value;
        switch (column % PATTERNS) {
          case 0: value = 127; break;
          case 1: value = k % 4 == 0 || k % 4 == 3 ? 127 : 1; break;
          case 2: value = k % 2 == 0 ? 127 : 1; break;
          default: value = k % 2 == 0 ? -127 : -1; break;
        }
        weights[k * COLUMNS + column] = (byte) value;
      }
    }
    return weights;
  }

  /** The sums of the first row, after checking that every row got the same. */
  private static long[] firstRowSums(OrtEnvironment environment, OrtSession session, int rows) throws OrtException {
    byte[] activations = new byte[rows * DEPTH];
    Arrays.fill(activations, (byte) 255);
    try (OnnxTensor input = OnnxTensor.createTensor(environment, ByteBuffer.wrap(activations),
            new long[] {rows, DEPTH}, OnnxJavaType.UINT8);
        OrtSession.Result output = session.run(Map.of("a", input))) {
      IntBuffer sums = ((OnnxTensor) output.get(0)).getIntBuffer();
      long[] first = new long[COLUMNS];
      for (int row = 0; row < rows; row++) {
        for (int column = 0; column < COLUMNS; column++) {
          int value = sums.get();
          if (row == 0) {
            first[column] = value;
          } else if (value != first[column]) {
            // Rows differ: report a value that matches no exact sum.
            first[column] = Long.MIN_VALUE;
          }
        }
      }
      return first;
    }
  }

  private static ModelProto model(byte[] weights) {
    GraphProto graph = GraphProto.newBuilder()
        .setName("int8_kernel_probe")
        .addNode(Int8Quantizer.node("probe", "MatMulInteger", List.of("a", "b"), List.of("y")))
        .addInitializer(Tensors.byteTensor("b", OnnxElementType.INT8, weights, DEPTH, COLUMNS))
        .addInput(OnnxProtos.valueInfo(new TensorDeclaration("a", OnnxElementType.UINT8,
            List.of(Dimension.from("rows"), Dimension.from(DEPTH)), true)))
        .addOutput(OnnxProtos.valueInfo(new TensorDeclaration("y", OnnxElementType.INT32,
            List.of(Dimension.from("rows"), Dimension.from(COLUMNS)), true)))
        .build();
    return ModelProto.newBuilder()
        .setIrVersion(OnnxModelBuilder.DEFAULT_IR_VERSION)
        .setProducerName(OnnxModelBuilder.DEFAULT_PRODUCER_NAME)
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OnnxModelBuilder.DEFAULT_OPSET))
        .setGraph(graph)
        .build();
  }

  /** What the probe found. Immutable. */
  public static final class Result {
    private final boolean signedWeightsExact;
    private final boolean pairedWeightsExact;
    private final String detail;
    private final ProcessorDescription processor;

    Result(boolean signedWeightsExact, boolean pairedWeightsExact, String detail, ProcessorDescription processor) {
      this.signedWeightsExact = signedWeightsExact;
      this.pairedWeightsExact = pairedWeightsExact;
      this.detail = detail;
      this.processor = processor;
    }

    /** Whether uint8 x int8 products were summed exactly for any weights, in every kernel probed. */
    public boolean signedWeightsExact() {
      return signedWeightsExact;
    }

    /** Whether they were for weights whose pairs of rows 2i, 2i+1 stay within 128 (u8s8-paired). */
    public boolean pairedWeightsExact() {
      return pairedWeightsExact;
    }

    /** u8s8 where it is exact, else u8s8-paired where that is, else u8u8. */
    public Int8Scheme scheme() {
      return signedWeightsExact ? Int8Scheme.U8S8 : pairedWeightsExact ? Int8Scheme.U8S8_PAIRED : Int8Scheme.U8U8;
    }

    /** The sums the probe saw, or why it could not run. */
    public String detail() {
      return detail;
    }

    public ProcessorDescription processor() {
      return processor;
    }

    /** One line: the choice, why, and the CPU. */
    @Override
    public String toString() {
      String kernel = signedWeightsExact ? "exact"
          : pairedWeightsExact ? "exact only for pairs of weights within 128 (16-bit pair sums)" : "not exact";
      return scheme().shortName() + " (ONNX Runtime's uint8 x int8 kernel is " + kernel + " on this CPU: " + detail
          + "; CPU " + processor + ")";
    }
  }
}
