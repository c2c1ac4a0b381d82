package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.sparkinfer.compression.OnnxElementType;
import io.github.sparkinfer.compression.OnnxModelBuilder;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mistakes that are knowable when a query is planned fail it then, at analysis, with the model, the
 * setting or argument, the value and the fix, before any Spark job starts.
 */
class TestAnalysisChecks {
  private static final String QUERY = "SELECT predict('mlp', features) FROM VALUES (array_repeat(CAST(1 AS FLOAT), 16)) AS t(features)";

  @TempDir static Path folder;
  private static SparkSession spark;
  private static Path mlpFile;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlpFile = TestModels.writeMlp(folder);
    spark.sql("SET spark.sparkinfer.model.mlp.path=" + mlpFile.toUri());
  }

  @AfterAll
  static void tearDown() {
    SparkInference.unregister(spark, "mlp");
  }

  @AfterEach
  void resetSettings() {
    for (String key : List.of("spark.sparkinfer.device", "spark.sparkinfer.device.fallback",
        "spark.sparkinfer.device.concurrentRuns", "spark.sparkinfer.cuda.gpuMemLimit", "spark.sparkinfer.batchSize",
        "spark.sparkinfer.model.mlp.batchSize", "spark.sparkinfer.model.mlp.precision",
        "spark.sparkinfer.cuda.option.gpu_external_alloc")) {
      SparkTestSessions.reset(key);
    }
  }

  @Test
  void deviceValueIsCheckedAtAnalysis() {
    spark.conf().set("spark.sparkinfer.device", "tpu:0");
    assertFailsBeforeAnyJob(QUERY,
        "Invalid value 'tpu:0' for spark.sparkinfer.device (model 'mlp'): expected auto, cpu, cuda:<index> or npu:<index>",
        "SET spark.sparkinfer.device=auto");
  }

  @Test
  void fallbackConcurrentRunsAndProviderOptionsAreCheckedAtAnalysis() {
    spark.conf().set("spark.sparkinfer.device.fallback", "gpu");
    assertFailsBeforeAnyJob(QUERY, "Cannot call model 'mlp': Invalid spark.sparkinfer.device.fallback 'gpu'");
    SparkTestSessions.reset("spark.sparkinfer.device.fallback");

    // Application keys are checked in the application's configuration.
    SparkTestSessions.setApplication("spark.sparkinfer.device.concurrentRuns", "0");
    try {
      assertFailsBeforeAnyJob(QUERY, "spark.sparkinfer.device.concurrentRuns 0: must be at least 1");
    } finally {
      SparkTestSessions.resetApplication("spark.sparkinfer.device.concurrentRuns");
    }
    SparkTestSessions.setApplication("spark.sparkinfer.cuda.gpuMemLimit", "lots");
    try {
      assertFailsBeforeAnyJob(QUERY, "Cannot call model 'mlp': ", "lots");
    } finally {
      SparkTestSessions.resetApplication("spark.sparkinfer.cuda.gpuMemLimit");
    }
    spark.conf().set("spark.sparkinfer.cuda.option.gpu_external_alloc", "140737488355328");
    assertFailsBeforeAnyJob(QUERY, "Cannot call model 'mlp': ", "gpu_external_alloc");
    SparkTestSessions.reset("spark.sparkinfer.cuda.option.gpu_external_alloc");
  }

  @Test
  void batchSizesOutOfRangeAreRefusedAtEveryLevel() {
    spark.conf().set("spark.sparkinfer.batchSize", "0");
    assertFailsBeforeAnyJob(QUERY, "Invalid value 0 for spark.sparkinfer.batchSize (model 'mlp'): must be at least 1");
    spark.conf().set("spark.sparkinfer.batchSize", "3000000");
    assertFailsBeforeAnyJob(QUERY,
        "Invalid batch size 3000000 for model 'mlp' (spark.sparkinfer.batchSize): must be from 1 to 1048576");
    SparkTestSessions.reset("spark.sparkinfer.batchSize");
    spark.conf().set("spark.sparkinfer.model.mlp.batchSize", "2000000");
    assertFailsBeforeAnyJob(QUERY, "Invalid batch size 2000000 for model 'mlp' (spark.sparkinfer.model.mlp.batchSize)");
    SparkTestSessions.reset("spark.sparkinfer.model.mlp.batchSize");
    assertThatThrownBy(() -> Inference.model("mlp").batchSize(1 << 21))
        .hasMessageContaining("Invalid batch size 2097152 for model 'mlp': must be from 1 to 1048576");
    // The largest allowed size is accepted.
    spark.conf().set("spark.sparkinfer.model.mlp.batchSize", String.valueOf(InferenceProperties.BATCH_SIZE_MAX));
    assertThat(spark.sql(QUERY).queryExecution().analyzed()).isNotNull();
  }

  @Test
  void precisionIsCheckedAtAnalysis() {
    spark.conf().set("spark.sparkinfer.model.mlp.precision", "int3");
    assertFailsBeforeAnyJob(QUERY, "int3", "spark.sparkinfer.model.mlp.precision");
  }

  @Test
  void constantArrayOfTheWrongLengthOrWithANullIsRefusedAtAnalysis() throws Exception {
    assertFailsBeforeAnyJob("SELECT predict('mlp', array_repeat(CAST(1 AS FLOAT), 15))",
        "predict('mlp', ...): the constant array for input 'features' has 15 values, but the input takes 16"
            + " (float tensor of shape [batch, 16]). Give it 16 values");
    assertFailsBeforeAnyJob("SELECT predict('mlp', array(" + "CAST(1 AS FLOAT), ".repeat(15) + "CAST(NULL AS FLOAT)))",
        "the constant array for input 'features' has a null element");
    // By name, in a constant struct, too.
    assertFailsBeforeAnyJob("SELECT predict('mlp', named_struct('features', array_repeat(CAST(1 AS FLOAT), 17)))",
        "has 17 values, but the input takes 16");
    // The right length runs, and matches the model.
    float[] ones = new float[TestModels.MLP_INPUTS];
    java.util.Arrays.fill(ones, 1f);
    List<Float> scores = spark.sql("SELECT predict('mlp', array_repeat(CAST(1 AS FLOAT), 16))").first().getList(0);
    float[] expected = TestModels.runFloatModel(mlpFile, "features", new float[][] {ones})[0];
    for (int i = 0; i < expected.length; i++) {
      assertThat(scores.get(i)).isCloseTo(expected[i], org.assertj.core.api.Assertions.within(1e-5f));
    }
  }

  /** Issue 28 (found by the model fuzzer): a fixed batch dimension of 2^31 wrapped to a negative batch size. */
  @Test
  void aFixedBatchDimensionLargerThanABatchIsRefusedAtAnalysis() throws Exception {
    Path file = folder.resolve("huge-batch.onnx");
    OnnxModelBuilder.create("huge_batch")
        .input("x", OnnxElementType.FLOAT, 2147483648L, 4)
        .node("Relu", List.of("x"), List.of("y"))
        .output("y", OnnxElementType.FLOAT, 2147483648L, 4)
        .writeTo(file);
    spark.conf().set("spark.sparkinfer.model.huge_batch.path", file.toUri().toString());
    try {
      assertFailsBeforeAnyJob("SELECT predict('huge_batch', array_repeat(CAST(1 AS FLOAT), 4))",
          "Model 'huge_batch' input 'x' has a fixed batch dimension of 2147483648 rows",
          "Export the model with a dynamic batch dimension");
    } finally {
      SparkInference.unregister(spark, "huge_batch");
    }
  }

  @Test
  void modelWithoutOutputsIsRefusedAtAnalysis() throws Exception {
    Path file = folder.resolve("no-outputs.onnx");
    OnnxModelBuilder.create("no_outputs")
        .input("x", OnnxElementType.FLOAT, "batch", 4)
        .node("Relu", List.of("x"), List.of("y"))
        .output("y", OnnxElementType.FLOAT, "batch", 4)
        .writeTo(file);
    // The builder refuses a graph without outputs; ONNX Runtime loads one. Drop the output from the file.
    byte[] model = java.nio.file.Files.readAllBytes(file);
    java.nio.file.Files.write(file, rewriteField(model, 7, graph -> dropField(graph, 12)));
    spark.conf().set("spark.sparkinfer.model.silent.path", file.toUri().toString());
    try {
      assertFailsBeforeAnyJob("SELECT predict('silent', array_repeat(CAST(1 AS FLOAT), 4))",
          "Model 'silent' has no outputs, so a call of it has nothing to return (its inputs are [x])");
    } finally {
      SparkInference.unregister(spark, "silent");
    }
  }

  @Test
  void sha256IsCheckedOnTheCopyBeforeAnyJob() throws Exception {
    String actual = java.util.HexFormat.of().formatHex(
        java.security.MessageDigest.getInstance("SHA-256").digest(java.nio.file.Files.readAllBytes(mlpFile)));
    Path copy = folder.resolve("pinned/mlp.onnx");
    java.nio.file.Files.createDirectories(copy.getParent());
    java.nio.file.Files.copy(mlpFile, copy);
    spark.conf().set("spark.sparkinfer.model.pinned.path", copy.toUri().toString());
    try {
      spark.conf().set("spark.sparkinfer.model.pinned.sha256", actual.toUpperCase(java.util.Locale.ROOT));
      assertThat(spark.sql("SELECT predict('pinned', array_repeat(CAST(1 AS FLOAT), 16))").collectAsList()).hasSize(1);
      String wrong = "0".repeat(64);
      spark.conf().set("spark.sparkinfer.model.pinned.sha256", wrong);
      assertFailsBeforeAnyJob("SELECT predict('pinned', array_repeat(CAST(1 AS FLOAT), 16))",
          "Cannot load model 'pinned' from " + copy.toUri() + ": its SHA-256 is " + actual
              + ", but spark.sparkinfer.model.pinned.sha256 expects " + wrong);
      spark.conf().set("spark.sparkinfer.model.pinned.sha256", "abc");
      assertFailsBeforeAnyJob("SELECT predict('pinned', array_repeat(CAST(1 AS FLOAT), 16))",
          "Invalid value 'abc' for spark.sparkinfer.model.pinned.sha256 (model 'pinned'): a SHA-256 is 64 hexadecimal digits");
    } finally {
      SparkInference.unregister(spark, "pinned");
      spark.conf().unset("spark.sparkinfer.model.pinned.sha256");
    }
  }

  @Test
  void modelWithAnInputNoColumnCanFeedIsRefusedAtAnalysis() throws Exception {
    Path file = folder.resolve("flags.onnx");
    OnnxModelBuilder.create("flags")
        .input("flag", OnnxElementType.BOOL, "batch")
        .node("Cast", List.of("flag"), List.of("value"), io.github.sparkinfer.compression.Attribute.ofInt("to", 1))
        .output("value", OnnxElementType.FLOAT, "batch")
        .writeTo(file);
    spark.conf().set("spark.sparkinfer.model.flags.path", file.toUri().toString());
    try {
      assertFailsBeforeAnyJob("SELECT predict('flags', true)",
          "Model 'flags' input 'flag' has element type", "which no Spark column can feed");
    } finally {
      SparkInference.unregister(spark, "flags");
    }
  }

  @Test
  void allowedRootsCannotBeSetFromASession() {
    spark.conf().set("spark.sparkinfer.model.allowedRoots", "file:/");
    try {
      assertFailsBeforeAnyJob(QUERY,
          "Cannot call model 'mlp': spark.sparkinfer.model.allowedRoots is an application setting",
          "its value 'file:/' differs from the application's (unset)", "RESET spark.sparkinfer.model.allowedRoots");
    } finally {
      spark.conf().unset("spark.sparkinfer.model.allowedRoots");
    }
  }

  // Protobuf wire format, just enough to drop a graph's outputs: ModelProto.graph is field 7,
  // GraphProto.output field 12.
  private static byte[] rewriteField(byte[] message, int field, java.util.function.UnaryOperator<byte[]> rewrite) {
    return transformFields(message, field, rewrite);
  }

  private static byte[] dropField(byte[] message, int field) {
    return transformFields(message, field, null);
  }

  private static byte[] transformFields(byte[] message, int target, java.util.function.UnaryOperator<byte[]> rewrite) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    int[] position = {0};
    while (position[0] < message.length) {
      int start = position[0];
      long key = varint(message, position);
      int field = (int) (key >>> 3);
      int wireType = (int) (key & 7);
      int valueStart = position[0];
      byte[] value = null;
      switch (wireType) {
        case 0: varint(message, position); break;
        case 1: position[0] += 8; break;
        case 5: position[0] += 4; break;
        case 2:
          int length = (int) varint(message, position);
          value = java.util.Arrays.copyOfRange(message, position[0], position[0] + length);
          position[0] += length;
          break;
        default: throw new IllegalStateException("wire type " + wireType);
      }
      if (field != target) {
        out.write(message, start, position[0] - start);
      } else if (rewrite != null) {
        byte[] rewritten = rewrite.apply(value);
        writeVarint(out, key);
        writeVarint(out, rewritten.length);
        out.writeBytes(rewritten);
      }
      assertThat(valueStart).isGreaterThan(start);
    }
    return out.toByteArray();
  }

  private static long varint(byte[] bytes, int[] position) {
    long value = 0;
    for (int shift = 0; ; shift += 7) {
      byte b = bytes[position[0]++];
      value |= (long) (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return value;
      }
    }
  }

  private static void writeVarint(java.io.ByteArrayOutputStream out, long value) {
    while ((value & ~0x7fL) != 0) {
      out.write((int) ((value & 0x7f) | 0x80));
      value >>>= 7;
    }
    out.write((int) value);
  }

  /** The query fails while Spark analyzes it (spark.sql analyzes eagerly): no job has started. */
  private static void assertFailsBeforeAnyJob(String query, String... messageParts) {
    String group = "analysis-check-" + System.nanoTime();
    spark.sparkContext().setJobGroup(group, "analysis check", false);
    try {
      var failure = assertThatThrownBy(() -> spark.sql(query)).isInstanceOf(AnalysisException.class);
      for (String part : messageParts) {
        failure.hasMessageContaining(part);
      }
      assertThat(spark.sparkContext().statusTracker().getJobIdsForGroup(group)).isEmpty();
    } finally {
      spark.sparkContext().clearJobGroup();
    }
  }
}
