package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.StructuredPruner;
import io.github.sparkinfer.compression.UnitEnergyProbe;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Activation statistics summed by a Spark job, checked against an MLP forward pass written here in
 * Java and against MiniLM's probe run by ONNX Runtime directly on each text alone (no padding);
 * and pruning at load time (pruneRatio) checked against the pruner's model run by ONNX Runtime.
 */
class TestActivationStatistics {
  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path mlp;
  private static MultilayerPerceptronModel network;
  private static float[][] features;
  private static Dataset<Row> points;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlp = folder.resolve("stats-mlp.onnx");
    network = MultilayerPerceptronModel.builder().layerSizes(16, 48, 24, 4).seed(31).inputName("features")
        .outputName("scores").build();
    network.writeTo(mlp);
    spark.conf().set("spark.sparkinfer.model.stats_mlp.path", mlp.toUri().toString());
    features = TestModels.randomRows(500, 16, 12);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < features.length; i++) {
      rows.add(RowFactory.create((long) i, TestPredictSql.boxed(features[i])));
    }
    points = spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false))).repartition(3);
  }

  @AfterAll
  static void tearDown() {
    for (String name : List.of("stats_mlp", "stats_pruned", "stats_minilm", "stats_linear")) {
      SparkInference.unregister(spark, name);
      spark.conf().unset("spark.sparkinfer.model." + name + ".pruneRatio");
      spark.conf().unset("spark.sparkinfer.model." + name + ".tokenizer");
    }
  }

  @Test
  void mlpSumsEqualAJavaForwardPass() throws Exception {
    ActivationStatistics.Statistics statistics = ActivationStatistics.builder("stats_mlp").inputs("features")
        .build().collect(points);
    assertThat(statistics.rows()).isEqualTo(500);
    assertThat(statistics.chains()).containsExactly("layer0.weight", "layer1.weight");
    // The forward pass, from the weights: relu(x Wᵀ + b) twice.
    double[] first = new double[48];
    double[] second = new double[24];
    float[][] w0 = rows(network.weights(0), 48, 16);
    float[][] w1 = rows(network.weights(1), 24, 48);
    float[] b0 = network.biases(0);
    float[] b1 = network.biases(1);
    for (float[] row : features) {
      double[] hidden = relu(row, w0, b0);
      double[] next = relu(toFloats(hidden), w1, b1);
      for (int j = 0; j < 48; j++) {
        first[j] += hidden[j] * hidden[j];
      }
      for (int j = 0; j < 24; j++) {
        second[j] += next[j] * next[j];
      }
    }
    assertClose(statistics.sums("layer0.weight"), first);
    assertClose(statistics.sums("layer1.weight"), second);
    // No probe file is left beside the model.
    try (var files = Files.list(folder)) {
      assertThat(files.map(Path::getFileName).map(Path::toString)).noneMatch(name -> name.contains("energy-probe"));
    }
  }

  @Test
  void miniLmSumsEqualEachTextAloneThroughTheProbe() throws Exception {
    Path model = TestModels.copyMiniLm(folder);
    Path tokenizerFile = TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json");
    spark.conf().set("spark.sparkinfer.model.stats_minilm.path", model.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.stats_minilm.tokenizer", tokenizerFile.toUri().toString());
    List<String> texts = TestEmbed.corpus(24);
    List<Row> rows = new ArrayList<>();
    for (String text : texts) {
      rows.add(RowFactory.create(text));
    }
    Dataset<Row> table = spark.createDataFrame(rows, new StructType().add("body", DataTypes.StringType)).repartition(2);
    ActivationStatistics.Statistics statistics = ActivationStatistics.builder("stats_minilm").embed("body").build()
        .collect(table);
    assertThat(statistics.rows()).isEqualTo(texts.size());
    assertThat(statistics.chains()).hasSize(6);

    // Reference: the probe run directly on each text alone, tokens from the tokenizer itself.
    UnitEnergyProbe probe = UnitEnergyProbe.of(OnnxModel.read(model));
    double[] expected = new double[probe.totalUnits()];
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (ai.djl.huggingface.tokenizers.HuggingFaceTokenizer tokenizer =
            ai.djl.huggingface.tokenizers.HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerFile)
                .optPadding(false).optTruncation(true).optMaxLength(128).build();
        OrtSession session = environment.createSession(probe.model().toBytes(), new OrtSession.SessionOptions())) {
      for (String text : texts) {
        long[] ids = tokenizer.encode(text).getIds();
        long[] mask = new long[ids.length];
        java.util.Arrays.fill(mask, 1);
        long[] shape = {1, ids.length};
        try (OnnxTensor idTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(ids), shape);
            OnnxTensor maskTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(mask), shape);
            OnnxTensor typeTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[ids.length]), shape);
            OrtSession.Result result = session.run(Map.of("input_ids", idTensor, "attention_mask", maskTensor,
                "token_type_ids", typeTensor), java.util.Set.of(UnitEnergyProbe.OUTPUT))) {
          float[] energy = ((float[][]) result.get(0).getValue())[0];
          for (int j = 0; j < energy.length; j++) {
            expected[j] += energy[j];
          }
        }
      }
    }
    Map<String, double[]> split = probe.split(expected);
    for (String chain : statistics.chains()) {
      assertClose(statistics.sums(chain), split.get(chain));
    }
    StructuredPruner.Result pruned = statistics.pruner(0.25).prune(OnnxModel.read(model));
    assertThat(pruned.chains()).allSatisfy(chain -> assertThat(chain.unitsAfter()).isEqualTo(1152));
  }

  @Test
  void pruneRatioAtLoadTimeRunsThePrunersModel() throws Exception {
    spark.conf().set("spark.sparkinfer.model.stats_pruned.path", mlp.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.stats_pruned.pruneRatio", "0.5");
    List<Row> scores = Inference.model("stats_pruned").input("features").as("scores")
        .transform(points).orderBy("id")
        .select("scores").collectAsList();
    Path reference = folder.resolve("stats-mlp-pruned.onnx");
    StructuredPruner.ofRatio(0.5).prune(OnnxModel.read(mlp)).model().writeTo(reference);
    float[][] expected = TestModels.runFloatModel(reference, "features", features);
    assertThat(scores).hasSize(500);
    for (int i = 0; i < expected.length; i++) {
      List<Float> actual = scores.get(i).getList(0);
      for (int k = 0; k < expected[i].length; k++) {
        assertThat(actual.get(k)).isCloseTo(expected[i][k], Offset.offset(1e-5f));
      }
    }
    // Different from the unpruned model: the setting took effect.
    float[][] unpruned = TestModels.runFloatModel(mlp, "features", features);
    assertThat(unpruned[0][0]).isNotCloseTo(expected[0][0], Offset.offset(1e-6f));
  }

  @Test
  void badRatiosAndUnprunableModelsFailBeforeTheJob() throws Exception {
    spark.conf().set("spark.sparkinfer.model.stats_pruned.path", mlp.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.stats_pruned.pruneRatio", "1.5");
    assertThatThrownBy(() -> Inference.model("stats_pruned").input("features").transform(points))
        .hasMessageContaining("Invalid value '1.5' for spark.sparkinfer.model.stats_pruned.pruneRatio")
        .hasMessageContaining("below 1");
    Path linear = folder.resolve("stats-linear.onnx");
    MultilayerPerceptronModel.builder().layerSizes(16, 4).seed(1).inputName("features").outputName("scores")
        .build().writeTo(linear);
    spark.conf().set("spark.sparkinfer.model.stats_linear.path", linear.toUri().toString());
    spark.conf().set("spark.sparkinfer.model.stats_linear.pruneRatio", "0.25");
    assertThatThrownBy(() -> Inference.model("stats_linear").input("features").transform(points))
        .hasMessageContaining("Model 'stats_linear'").hasMessageContaining("has no MatMul/Gemm")
        .hasMessageContaining("Unset spark.sparkinfer.model.stats_linear.pruneRatio");
    assertThatThrownBy(() -> ActivationStatistics.builder("stats_linear").inputs("features").build().collect(points))
        .hasMessageContaining("Cannot collect activation statistics of model 'stats_linear'");
    assertThatThrownBy(() -> ActivationStatistics.builder("not_registered").inputs("features").build().collect(points))
        .hasMessageContaining("model 'not_registered': it is not registered")
        .hasMessageContaining("spark.sparkinfer.model.not_registered.path");
  }

  private static void assertClose(double[] actual, double[] expected) {
    assertThat(actual).hasSameSizeAs(expected);
    for (int j = 0; j < expected.length; j++) {
      assertThat(actual[j]).as("unit %d", j).isCloseTo(expected[j], Offset.offset(1e-4 + 1e-4 * expected[j]));
    }
  }

  private static float[][] rows(float[] flat, int rows, int columns) {
    float[][] result = new float[rows][columns];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(flat, r * columns, result[r], 0, columns);
    }
    return result;
  }

  private static double[] relu(float[] x, float[][] w, float[] b) {
    double[] y = new double[w.length];
    for (int j = 0; j < w.length; j++) {
      double sum = b[j];
      for (int k = 0; k < x.length; k++) {
        sum += (double) x[k] * w[j][k];
      }
      y[j] = Math.max(0, sum);
    }
    return y;
  }

  private static float[] toFloats(double[] values) {
    float[] result = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = (float) values[i];
    }
    return result;
  }
}
