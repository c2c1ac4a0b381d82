package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;
import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import io.github.sparkinfer.compression.ModelCompressor;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.Precision;
import io.github.sparkinfer.device.Device;
import io.github.sparkinfer.device.DeviceRunLimiter;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.spark.reference.MiniLmReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a real NVIDIA GPU: the CUDA execution provider is really used (fallback=fail, and the
 * recorded binding says CUDA), and results match a direct ONNX Runtime call on the same GPU.
 * Skipped, not failed, where ONNX Runtime has no CUDA provider or no GPU is visible;
 * scripts/gpu/run-on-gpu.sh runs this group.
 *
 * <p>Each bound is the measured worst case on an H200 (CUDA 13, ORT's CUDA provider, which allows
 * TF32 matrix math by default) with a margin, written next to it; each test prints what it measured.
 */
@Tag("gpu")
class TestGpuInference {
  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path mlp;
  private static float[][] features;

  @BeforeAll
  static void requireGpu() throws Exception {
    boolean cuda = OrtEnvironments.get().getAvailableProviders().contains(OrtProvider.CUDA);
    boolean visible = Files.exists(Path.of("/dev/nvidia0")) || Files.isDirectory(Path.of("/proc/driver/nvidia/gpus"));
    Assumptions.assumeTrue(cuda && visible, "no CUDA provider in this ONNX Runtime or no NVIDIA GPU visible");
    spark = SparkTestSessions.shared();
    mlp = folder.resolve("gpu-mlp.onnx");
    MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 16).seed(42).inputName("features")
        .outputName("scores").build().writeTo(mlp);
    spark.conf().set("spark.sparkinfer.model.gpu_mlp.path", mlp.toUri().toString());
    features = TestModels.randomRows(4000, 64, 99);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < features.length; i++) {
      rows.add(RowFactory.create((long) i, TestPredictSql.boxed(features[i])));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType)
            .add("features", DataTypes.createArrayType(DataTypes.FloatType, false)))
        .repartition(4).createOrReplaceTempView("gpu_points");
    List<String> texts = TestEmbed.corpus();
    List<Row> docs = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      docs.add(RowFactory.create((long) i, texts.get(i)));
    }
    spark.createDataFrame(docs, new StructType().add("id", DataTypes.LongType).add("body", DataTypes.StringType))
        .repartition(2).createOrReplaceTempView("gpu_docs");
  }

  @AfterEach
  void resetDevice() {
    SparkTestSessions.reset("spark.sparkinfer.device");
    spark.conf().unset("spark.sparkinfer.device.fallback");
  }

  @AfterAll
  static void tearDown() {
    if (spark != null) {
      for (String model : List.of("gpu_mlp", "gpu_minilm", "fp16_minilm")) {
        SparkInference.unregister(spark, model);
      }
    }
  }

  private static OrtSession.SessionOptions onCuda() throws OrtException {
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.addCUDA(0);
    return options;
  }

  private static void runOnTheGpu() {
    spark.conf().set("spark.sparkinfer.device", "cuda:0");
    spark.conf().set("spark.sparkinfer.device.fallback", "fail");
  }

  private static void assertBoundToTheGpu(Dataset<Row> executed) {
    assertThat(SparkInference.deviceBindings(executed)).isNotEmpty().allSatisfy(record -> assertThat(record)
        .contains("requested=cuda:0").contains("bound=cuda:0").contains("provider=CUDAExecutionProvider")
        .contains("fallback=none"));
  }

  @Test
  void mlpOnCudaMatchesDirectOrtOnCuda() throws Exception {
    float[][] directGpu;
    try (OrtSession.SessionOptions options = onCuda()) {
      directGpu = TestModels.runFloatModel(mlp, "features", features, options);
    }
    float[][] directCpu = TestModels.runFloatModel(mlp, "features", features);
    runOnTheGpu();
    Dataset<Row> onGpu = spark.sql("SELECT id, predict('gpu_mlp', features) AS s FROM gpu_points");
    List<Row> rows = onGpu.collectAsList();
    assertBoundToTheGpu(onGpu);
    assertThat(rows).hasSize(features.length);
    double worst = 0;
    for (Row row : rows) {
      List<Float> actual = row.getList(1);
      float[] expected = directGpu[(int) row.getLong(0)];
      for (int k = 0; k < expected.length; k++) {
        worst = Math.max(worst, Math.abs(actual.get(k) - expected[k]));
      }
    }
    double gpuVsCpu = 0;
    for (int i = 0; i < features.length; i++) {
      for (int k = 0; k < directCpu[i].length; k++) {
        gpuVsCpu = Math.max(gpuVsCpu, Math.abs(directGpu[i][k] - directCpu[i][k]));
      }
    }
    System.out.println("MLP over " + rows.size() + " rows x 16: max |sparkinfer on GPU - direct ORT on GPU| "
        + worst + ", max |direct ORT GPU - direct ORT CPU| " + gpuVsCpu);
    // sparkinfer's batches (about 1,000 rows per task) against one batch of 4,000: cuBLAS may choose
    // another kernel per batch size, so fp32 sums of 256 terms of ~1 may run in another order (a few
    // 1e-6); measured 0 (identical) on the H200.
    assertThat(worst).as("sparkinfer on the GPU vs direct ORT on the GPU").isLessThanOrEqualTo(1e-5);
    // TF32 (10-bit mantissa inputs) on outputs of magnitude ~1: measured 1.9e-3 on the H200; twice that.
    assertThat(gpuVsCpu).as("direct ORT: GPU vs CPU").isLessThanOrEqualTo(4e-3);
  }

  /** No batch size set: the executor's device chooses, 16,384 rows on the GPU and 1,024 on the CPU. */
  @Test
  void theBoundDeviceChoosesTheDefaultBatchSize() {
    String query = "SELECT id, predict('gpu_mlp', array_repeat(CAST(id % 7 AS FLOAT), 64)) AS s FROM range(0, 40000, 1, 2)";
    runOnTheGpu();
    Dataset<Row> onGpu = spark.sql(query);
    assertThat(onGpu.collectAsList()).hasSize(40000);
    assertBoundToTheGpu(onGpu);
    // Two partitions of 20,000 rows: 16,384 + 3,616 each.
    assertThat(TestPredictSql.metric(onGpu, "batches")).isEqualTo(4);
    spark.conf().set("spark.sparkinfer.device", "cpu");
    Dataset<Row> onCpu = spark.sql(query);
    assertThat(onCpu.collectAsList()).hasSize(40000);
    // 20 batches of 1,024 rows (the last of 544) per partition.
    assertThat(TestPredictSql.metric(onCpu, "batches")).isEqualTo(40);
  }

  @Test
  void batchesThatRunOutOfGpuMemoryAreSplitAndGiveTheSameResults() throws Exception {
    float[][] directCpu = TestModels.runFloatModel(mlp, "features", features);
    runOnTheGpu();
    // A 32 MiB arena: a task's batch of 25,000 rows needs about 60 MB of activations; 6,000 rows fit.
    SparkTestSessions.setApplication("spark.sparkinfer.cuda.gpuMemLimit", "32m");
    spark.conf().set("spark.sparkinfer.cuda.arenaExtendStrategy", "kSameAsRequested");
    spark.conf().set("spark.sparkinfer.model.gpu_mlp.batchSize", "65536");
    // Two runs share the GPU (device.concurrentRuns=2, tasks of two partitions at once): a batch that runs out of
    // the small arena while the other run holds it is run again alone before it is split, so no row fails for
    // memory the other run held (before, on an H100: "Available memory of 0" for a single row).
    assertThat(io.github.sparkinfer.device.DeviceRunLimiter.shared().concurrentRuns()).isGreaterThan(1);
    try {
      Dataset<Row> onGpu = spark.sql("SELECT id, copy, predict('gpu_mlp', features) AS s FROM (SELECT /*+ REPARTITION(4) */"
          + " p.id, copy, p.features FROM gpu_points p CROSS JOIN (SELECT id AS copy FROM range(25)))");
      List<Row> rows = onGpu.collectAsList();
      assertBoundToTheGpu(onGpu);
      assertThat(rows).hasSize(features.length * 25);
      double worst = 0;
      for (Row row : rows) {
        List<Float> actual = row.getList(2);
        float[] expected = directCpu[(int) row.getLong(0)];
        for (int k = 0; k < expected.length; k++) {
          worst = Math.max(worst, Math.abs(actual.get(k) - expected[k]));
        }
      }
      long splits = TestPredictSql.metric(onGpu, "memorySplits");
      long batches = TestPredictSql.metric(onGpu, "batches");
      System.out.println("Out of GPU memory: " + splits + " batches split, " + batches + " batches in all, max |GPU - CPU| "
          + worst);
      assertThat(splits).as("batches split after running out of GPU memory").isPositive();
      assertThat(TestPredictSql.metric(onGpu, "memoryRetriesAlone")).as("batches run again alone").isPositive();
      assertThat(TestPredictSql.metric(onGpu, "modelRows")).isEqualTo(rows.size());
      // TF32 on the GPU against fp32 on the CPU, as in mlpOnCudaMatchesDirectOrtOnCuda.
      assertThat(worst).isLessThanOrEqualTo(4e-3);
    } finally {
      SparkTestSessions.resetApplication("spark.sparkinfer.cuda.gpuMemLimit");
      spark.conf().unset("spark.sparkinfer.cuda.arenaExtendStrategy");
      spark.conf().unset("spark.sparkinfer.model.gpu_mlp.batchSize");
    }
  }

  @Test
  void miniLmEmbeddingsOnCudaMatchDirectOrtOnCuda() throws Exception {
    Path model = TestModels.copyResource(folder, "all-minilm-l6-v2.onnx");
    Path tokenizer = TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json");
    spark.conf().set("spark.sparkinfer.model.gpu_minilm.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.gpu_minilm.tokenizer", tokenizer.toUri().toString());
    runOnTheGpu();
    Dataset<Row> onGpu = spark.sql("SELECT id, body, embed('gpu_minilm', body) AS e FROM gpu_docs");
    List<Row> rows = onGpu.collectAsList();
    assertBoundToTheGpu(onGpu);
    // Pooled inside the graph by default on the GPU (poolOnDevice=auto); the reference pools in Java.
    assertThat(SparkInference.deviceBindings(onGpu)).allSatisfy(record -> assertThat(record).contains("pooling=graph"));
    double worst = 1;
    int compared = 0;
    try (HuggingFaceTokenizer direct = HuggingFaceTokenizer.builder().optTokenizerPath(tokenizer)
            .optPadding(false).optTruncation(true).optMaxLength(128).build();
        OrtSession.SessionOptions options = onCuda()) {
      for (Row row : rows) {
        // The reference: DJL's ids, one text per run (no padding), mean pooling and unit length here.
        long[] ids = direct.encode(row.getString(1)).getIds();
        long[] mask = new long[ids.length];
        java.util.Arrays.fill(mask, 1L);
        float[][] hidden = TestModels.runMiniLm(model, new long[][] {ids}, new long[][] {mask}, options)[0];
        double cosine = cosine(floats(row.getList(2)), MiniLmReference.meanPooledUnit(hidden));
        worst = Math.min(worst, cosine);
        compared++;
      }
    }
    System.out.println("MiniLM fp32 worst cosine, sparkinfer on GPU vs direct ORT on GPU, over " + compared
        + " texts: " + worst);
    assertThat(compared).isGreaterThanOrEqualTo(200);
    // Padded batches against one unpadded text per run, both TF32: measured worst 0.99999975 on the
    // H200 (1 - 2.5e-7); bound 1 - 1e-6.
    assertThat(worst).isGreaterThanOrEqualTo(0.999999);
  }

  @Test
  void fp16MiniLmMadeInJavaOnCudaMatchesLangchain4jFp32() throws Exception {
    Path fp32 = TestModels.copyResource(folder, "all-minilm-l6-v2.onnx");
    Path fp16 = folder.resolve("all-minilm-l6-v2.fp16.onnx");
    ModelCompressor.builder().precision(Precision.FLOAT16).build().compress(OnnxModel.read(fp32)).model()
        .writeTo(fp16);
    spark.conf().set("spark.sparkinfer.model.fp16_minilm.path", fp16.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.fp16_minilm.tokenizer",
        TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json").toUri().toString());
    runOnTheGpu();
    Dataset<Row> onGpu = spark.sql("SELECT id, body, embed('fp16_minilm', body) FROM gpu_docs");
    List<Row> half = onGpu.collectAsList();
    assertBoundToTheGpu(onGpu);
    AllMiniLmL6V2EmbeddingModel reference = new AllMiniLmL6V2EmbeddingModel();
    double worst = 1;
    double sum = 0;
    int compared = 0;
    for (Row row : half) {
      if (row.getString(1).isBlank()) {
        continue; // langchain4j refuses blank text
      }
      double cosine = cosine(floats(row.getList(2)), reference.embed(row.getString(1)).content().vector());
      worst = Math.min(worst, cosine);
      sum += cosine;
      compared++;
    }
    System.out.println("fp16 MiniLM on GPU vs langchain4j fp32 over " + compared + " texts: mean cosine "
        + sum / compared + ", worst " + worst);
    assertThat(compared).isGreaterThanOrEqualTo(200);
    // fp16 weights and activations (10-bit mantissa) through six layers: measured worst 0.9999958 on the
    // H200 (1 - 4.2e-6, mean 1 - 1.3e-6 over 211 texts); bound 1 - 1e-5.
    assertThat(worst).isGreaterThanOrEqualTo(0.99999);
  }

  /**
   * device.concurrentRuns inside Spark tasks: with every run permit of cuda:0 held here, the tasks
   * bound to cuda:0 load the model and then wait; they finish once the permits are given back.
   */
  @Test
  @Timeout(value = 3, unit = TimeUnit.MINUTES)
  void tasksBoundToTheGpuWaitForItsRunPermits() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.shared();
    Device gpu = Device.cuda(0);
    List<DeviceRunLimiter.Permit> held = new ArrayList<>();
    for (int i = 0; i < limiter.concurrentRuns(); i++) {
      held.add(limiter.acquire(gpu));
    }
    runOnTheGpu();
    ExecutorService driver = Executors.newSingleThreadExecutor();
    try {
      Dataset<Row> onGpu = spark.sql("SELECT id, predict('gpu_mlp', features) AS s FROM gpu_points");
      Future<List<Row>> query = driver.submit(onGpu::collectAsList);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
      while (limiter.waitingRuns(gpu) < 1 && !query.isDone() && System.nanoTime() < deadline) {
        Thread.onSpinWait();
      }
      assertThat(query.isDone()).as("the query while no permit is free").isFalse();
      assertThat(limiter.waitingRuns(gpu)).as("tasks waiting for a permit of cuda:0").isPositive();
      assertThat(limiter.activeRuns(gpu)).as("runs on cuda:0: only this test's permits").isEqualTo(limiter.concurrentRuns());

      held.forEach(DeviceRunLimiter.Permit::close);
      held.clear();
      List<Row> rows = query.get(2, TimeUnit.MINUTES);
      assertThat(rows).hasSize(features.length);
      assertBoundToTheGpu(onGpu);
      assertThat(limiter.activeRuns(gpu)).isZero();
      // The wait is its own metric, apart from the runs' time.
      assertThat(TestPredictSql.metric(onGpu, "deviceWaitTime")).as("time waiting for the device, ns").isPositive();
    } finally {
      held.forEach(DeviceRunLimiter.Permit::close);
      driver.shutdownNow();
    }
  }
  private static float[] floats(List<Float> values) {
    float[] array = new float[values.size()];
    for (int i = 0; i < array.length; i++) {
      array[i] = values.get(i);
    }
    return array;
  }

  private static double cosine(float[] a, float[] b) {
    double dot = 0;
    double left = 0;
    double right = 0;
    for (int i = 0; i < a.length; i++) {
      dot += (double) a[i] * b[i];
      left += (double) a[i] * a[i];
      right += (double) b[i] * b[i];
    }
    return dot / Math.sqrt(left * right);
  }
}
