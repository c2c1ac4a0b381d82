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
 * Asks this process's ONNX Runtime, once, whether its uint8 x int8 matrix multiplication is exact
 * on this CPU: a MatMulInteger of activations that are all 255 with constant weights that are all
 * 127, whose exact sums (255 x 127 x K) overflow any 16-bit pair sum. A kernel that adds pairs of
 * products in saturating 16-bit lanes (MLAS's AVX2 and AVX-512 kernels without VNNI) returns
 * about half; VNNI, AMX and ARM kernels return the exact value.
 *
 * <p>Run by behaviour rather than by CPU flags so that the answer is right wherever the flags
 * mislead: an emulator, a virtual machine that hides a feature, an operating system without
 * /proc/cpuinfo, another ONNX Runtime version's kernel choice. Both the one-row (GEMV) and the
 * many-row (GEMM) kernels are probed, with the weights pre-packed as for a real model.
 */
public final class Int8KernelProbe {
  private static final int DEPTH = 64;
  private static final int COLUMNS = 16;
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
        : new Result(false, "the probe thread ended without an answer, so the scheme exact on every CPU is used",
            ProcessorDescription.current());
  }

  private static Result probe() {
    long exact = 255L * 127 * DEPTH;
    ProcessorDescription processor = ProcessorDescription.current();
    try {
      OrtEnvironment environment = OrtEnvironment.getEnvironment();
      try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
        options.setIntraOpNumThreads(1);
        try (OrtSession session = environment.createSession(model().toByteArray(), options)) {
          long[] observed = new long[ROWS.length];
          boolean exactEverywhere = true;
          for (int i = 0; i < ROWS.length; i++) {
            observed[i] = smallestSum(environment, session, ROWS[i]);
            exactEverywhere &= observed[i] == exact;
          }
          String detail = "uint8 255 x int8 127 summed over " + DEPTH + " gave "
              + Arrays.toString(observed) + " for " + Arrays.toString(ROWS) + " rows, exactly "
              + exact;
          return new Result(exactEverywhere, detail, processor);
        }
      }
    } catch (OrtException | RuntimeException | LinkageError e) {
      return new Result(false, "the probe could not run (" + e + "), so the scheme exact on every CPU is used",
          processor);
    }
  }

  private static long smallestSum(OrtEnvironment environment, OrtSession session, int rows) throws OrtException {
    byte[] activations = new byte[rows * DEPTH];
    Arrays.fill(activations, (byte) 255);
    try (OnnxTensor input = OnnxTensor.createTensor(environment, ByteBuffer.wrap(activations),
            new long[] {rows, DEPTH}, OnnxJavaType.UINT8);
        OrtSession.Result output = session.run(Map.of("a", input))) {
      IntBuffer sums = ((OnnxTensor) output.get(0)).getIntBuffer();
      long smallest = Long.MAX_VALUE;
      while (sums.hasRemaining()) {
        smallest = Math.min(smallest, sums.get());
      }
      return smallest;
    }
  }

  private static ModelProto model() {
    byte[] weights = new byte[DEPTH * COLUMNS];
    Arrays.fill(weights, (byte) 127);
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
    private final String detail;
    private final ProcessorDescription processor;

    Result(boolean signedWeightsExact, String detail, ProcessorDescription processor) {
      this.signedWeightsExact = signedWeightsExact;
      this.detail = detail;
      this.processor = processor;
    }

    /** Whether uint8 x int8 products were summed exactly, in every kernel probed. */
    public boolean signedWeightsExact() {
      return signedWeightsExact;
    }

    /** u8s8 where it is exact, else u8u8. */
    public Int8Scheme scheme() {
      return signedWeightsExact ? Int8Scheme.U8S8 : Int8Scheme.U8U8;
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
      return scheme().shortName() + " (ONNX Runtime's uint8 x int8 kernel is "
          + (signedWeightsExact ? "exact" : "not exact") + " on this CPU: " + detail + "; CPU " + processor + ")";
    }
  }
}
