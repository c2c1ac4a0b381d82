package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OrtProvider;
import io.github.sparkinfer.device.OrtEnvironments;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a real NVIDIA GPU: the CUDA execution provider is really used (fallback=fail, and the
 * recorded binding says CUDA), and results match the CPU's. Skipped, not failed, where ONNX
 * Runtime has no CUDA provider or no GPU is visible; scripts/gpu/run-on-gpu.sh runs this group.
 *
 * <p>Tolerances: fp32 on the GPU sums in another order, and the CUDA provider allows TF32 matrix
 * math by default (10-bit mantissa inputs), so values differ from the CPU's by up to about 1e-2 on
 * the MLP's outputs of magnitude ~1; embeddings keep a cosine of at least 0.999 to the CPU's.
 */
@Tag("gpu")
class TestGpuInference {
  @TempDir static Path folder;

  private static SparkSession spark;

  @BeforeAll
  static void requireGpu() {
    boolean cuda = OrtEnvironments.get().getAvailableProviders().contains(OrtProvider.CUDA);
    boolean visible = Files.exists(Path.of("/dev/nvidia0")) || Files.isDirectory(Path.of("/proc/driver/nvidia/gpus"));
    Assumptions.assumeTrue(cuda && visible, "no CUDA provider in this ONNX Runtime or no NVIDIA GPU visible");
    spark = SparkTestSessions.shared();
  }

  @AfterAll
  static void tearDown() {
    if (spark != null) {
      spark.conf().unset("spark.sparkinfer.device");
      spark.conf().unset("spark.sparkinfer.device.fallback");
    }
  }

  @Test
  void mlpOnCudaMatchesCpu() throws Exception {
    Path model = folder.resolve("gpu-mlp.onnx");
    io.github.sparkinfer.compression.MultilayerPerceptronModel.builder()
        .layerSizes(64, 256, 256, 16).seed(42).inputName("features").outputName("scores").build().writeTo(model);
    spark.conf().set("spark.sparkinfer.model.gpu_mlp.path", model.toUri().toString());
    float[][] features = TestModels.randomRows(4000, 64, 99);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < features.length; i++) {
      rows.add(RowFactory.create((long) i, TestPredictSql.boxed(features[i])));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType)
            .add("features", DataTypes.createArrayType(DataTypes.FloatType, false)))
        .repartition(4).createOrReplaceTempView("gpu_points");
    String query = "SELECT id, predict('gpu_mlp', features) AS s FROM gpu_points ORDER BY id";
    spark.conf().set("spark.sparkinfer.device", "cpu");
    List<Row> cpu = spark.sql(query).collectAsList();
    spark.conf().set("spark.sparkinfer.device", "cuda:0");
    spark.conf().set("spark.sparkinfer.device.fallback", "fail");
    Dataset<Row> onGpu = spark.sql(query);
    List<Row> gpu = onGpu.collectAsList();
    assertThat(SparkInference.deviceBindings(onGpu)).isNotEmpty().allSatisfy(record -> assertThat(record)
        .contains("requested=cuda:0").contains("bound=cuda:0").contains("provider=CUDAExecutionProvider")
        .contains("fallback=none"));
    double max = 0;
    for (int i = 0; i < cpu.size(); i++) {
      List<Float> left = cpu.get(i).getList(1);
      List<Float> right = gpu.get(i).getList(1);
      for (int k = 0; k < left.size(); k++) {
        max = Math.max(max, Math.abs(left.get(k) - right.get(k)));
      }
    }
    System.out.println("MLP max |GPU - CPU| over " + cpu.size() + " rows x 16: " + max);
    assertThat(max).isLessThan(2e-2);
  }

  @Test
  void fp16MiniLmMadeInJavaMatchesFp32OnCuda() throws Exception {
    Path fp32 = TestModels.copyResource(folder, "all-minilm-l6-v2.onnx");
    Path fp16 = folder.resolve("all-minilm-l6-v2.fp16.onnx");
    io.github.sparkinfer.compression.ModelCompressor.builder()
        .precision(io.github.sparkinfer.compression.Precision.FLOAT16).build()
        .compress(io.github.sparkinfer.compression.OnnxModel.read(fp32)).model().writeTo(fp16);
    Path tokenizer = TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json");
    spark.conf().set("spark.sparkinfer.model.fp32_minilm.path", fp32.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.fp32_minilm.tokenizer", tokenizer.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.fp16_minilm.path", fp16.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.fp16_minilm.tokenizer", tokenizer.toUri().toString());
    List<String> texts = TestEmbed.corpus();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      rows.add(RowFactory.create((long) i, texts.get(i)));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType).add("body", DataTypes.StringType))
        .repartition(2).createOrReplaceTempView("fp16_docs");
    spark.conf().set("spark.sparkinfer.device", "cpu");
    List<Row> reference = spark.sql("SELECT id, embed('fp32_minilm', body) FROM fp16_docs ORDER BY id").collectAsList();
    spark.conf().set("spark.sparkinfer.device", "cuda:0");
    spark.conf().set("spark.sparkinfer.device.fallback", "fail");
    Dataset<Row> onGpu = spark.sql("SELECT id, embed('fp16_minilm', body) FROM fp16_docs ORDER BY id");
    List<Row> half = onGpu.collectAsList();
    assertThat(SparkInference.deviceBindings(onGpu)).isNotEmpty().allSatisfy(record -> assertThat(record)
        .contains("bound=cuda:0").contains("provider=CUDAExecutionProvider"));
    double worst = 1;
    double sum = 0;
    for (int i = 0; i < reference.size(); i++) {
      List<Float> left = reference.get(i).getList(1);
      List<Float> right = half.get(i).getList(1);
      double dot = 0;
      for (int k = 0; k < left.size(); k++) {
        dot += left.get(k) * right.get(k);
      }
      worst = Math.min(worst, dot);
      sum += dot;
    }
    System.out.println("fp16 MiniLM on GPU vs fp32 on CPU over " + reference.size() + " texts: mean cosine "
        + sum / reference.size() + ", worst " + worst);
    assertThat(worst).isGreaterThanOrEqualTo(0.999);
  }

  @Test
  void miniLmEmbeddingsOnCudaMatchCpu() {
    spark.conf().set("spark.sparkinfer.model.gpu_minilm.path",
        TestModels.copyResource(folder, "all-minilm-l6-v2.onnx").toUri().toString());
    spark.conf().set("spark.sparkinfer.model.gpu_minilm.tokenizer",
        TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json").toUri().toString());
    List<String> texts = TestEmbed.corpus();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      rows.add(RowFactory.create((long) i, texts.get(i)));
    }
    spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType).add("body", DataTypes.StringType))
        .repartition(2).createOrReplaceTempView("gpu_docs");
    String query = "SELECT id, embed('gpu_minilm', body) AS e FROM gpu_docs ORDER BY id";
    spark.conf().set("spark.sparkinfer.device", "cpu");
    List<Row> cpu = spark.sql(query).collectAsList();
    spark.conf().set("spark.sparkinfer.device", "cuda:0");
    spark.conf().set("spark.sparkinfer.device.fallback", "fail");
    Dataset<Row> onGpu = spark.sql(query);
    List<Row> gpu = onGpu.collectAsList();
    assertThat(SparkInference.deviceBindings(onGpu)).isNotEmpty().allSatisfy(record -> assertThat(record)
        .contains("bound=cuda:0").contains("provider=CUDAExecutionProvider"));
    double worst = 1;
    for (int i = 0; i < cpu.size(); i++) {
      List<Float> left = cpu.get(i).getList(1);
      List<Float> right = gpu.get(i).getList(1);
      double dot = 0;
      for (int k = 0; k < left.size(); k++) {
        dot += left.get(k) * right.get(k);
      }
      worst = Math.min(worst, dot);
    }
    System.out.println("MiniLM worst cosine GPU vs CPU over " + cpu.size() + " texts: " + worst);
    assertThat(worst).isGreaterThanOrEqualTo(0.999);
  }
}
