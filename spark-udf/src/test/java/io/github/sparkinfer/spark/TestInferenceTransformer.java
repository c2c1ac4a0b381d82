package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.ml.InferenceTransformer;
import io.github.sparkinfer.spark.plan.BatchPredict;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.feature.SQLTransformer;
import org.apache.spark.ml.feature.VectorAssembler;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ML stage in a real Pipeline (VectorAssembler before it, SQLTransformer after it), saved,
 * loaded in a new session without the model registered and with the original file gone, checked
 * against direct ONNX Runtime calls; and its plan equal to SQL's.
 */
class TestInferenceTransformer {
  private static final int ROWS = 200;
  private static final int COLUMNS = 8;

  @TempDir static Path folder;
  private static SparkSession spark;
  private static Path mlpFile;
  private static Dataset<Row> table;
  private static float[][] values;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkTestSessions.shared();
    mlpFile = folder.resolve("original/mlp.onnx");
    Files.createDirectories(mlpFile.getParent());
    MultilayerPerceptronModel.builder().layerSizes(COLUMNS, 16, 3).seed(3).inputName("features")
        .outputName("scores").build().writeTo(mlpFile);
    SplittableRandom random = new SplittableRandom(17);
    values = new float[ROWS][COLUMNS];
    List<Row> rows = new ArrayList<>();
    StructType schema = new StructType().add("id", DataTypes.LongType, false);
    for (int c = 0; c < COLUMNS; c++) {
      schema = schema.add("c" + c, DataTypes.DoubleType, false);
    }
    for (int i = 0; i < ROWS; i++) {
      Object[] row = new Object[COLUMNS + 1];
      row[0] = (long) i;
      for (int c = 0; c < COLUMNS; c++) {
        // Values a float holds exactly, so the assembler's doubles reach the model unchanged.
        values[i][c] = (float) random.nextInt(-64, 64) / 16f;
        row[c + 1] = (double) values[i][c];
      }
      rows.add(RowFactory.create(row));
    }
    table = spark.createDataFrame(rows, schema).repartition(3);
  }

  @Test
  void pipelineSavedAndLoadedInANewSessionGivesTheDirectOrtResults() throws Exception {
    String[] columns = Stream.iterate(0, c -> c + 1).limit(COLUMNS).map(c -> "c" + c).toArray(String[]::new);
    VectorAssembler assembler = new VectorAssembler().setInputCols(columns).setOutputCol("features");
    InferenceTransformer scorer = new InferenceTransformer().setModelName("mlp").setModelUri(mlpFile.toUri().toString())
        .setInputCols(new String[] {"features"}).setOutputCol("scores").setBatchSize(64);
    SQLTransformer firstScore = new SQLTransformer()
        .setStatement("SELECT id, scores, scores[0] AS first_score FROM __THIS__");
    PipelineModel fitted = new Pipeline().setStages(new PipelineStage[] {assembler, scorer, firstScore}).fit(table);
    Map<Long, float[]> expected = directOrt();
    assertResults(fitted.transform(table), expected);

    Path saved = folder.resolve("pipeline");
    fitted.write().overwrite().save(saved.toString());
    // The model now lives only in the saved pipeline.
    Files.move(mlpFile, folder.resolve("moved.onnx"));
    try {
      SparkSession fresh = spark.newSession();
      SparkSession.setActiveSession(fresh);
      assertThat(SparkInference.registeredModels(fresh)).isEmpty();
      PipelineModel loaded = PipelineModel.load(saved.toString());
      InferenceTransformer loadedScorer = (InferenceTransformer) loaded.stages()[1];
      assertThat(loadedScorer.getOrDefault(loadedScorer.modelUri())).startsWith("file:").endsWith("/pipeline/stages/1_"
          + scorer.uid() + "/model/mlp.onnx");
      assertThat(loadedScorer.getOrDefault(loadedScorer.batchSize())).isEqualTo(64);
      Dataset<Row> freshTable = fresh.createDataFrame(table.collectAsList(), table.schema());
      assertResults(loaded.transform(freshTable), expected);
    } finally {
      SparkSession.setActiveSession(spark);
      Files.move(folder.resolve("moved.onnx"), mlpFile);
    }
  }

  @Test
  void planIsTheSameBatchNodeAsSql() {
    spark.conf().set("spark.sparkinfer.model.mlp.path", mlpFile.toUri().toString());
    try {
      Dataset<Row> vectors = new VectorAssembler()
          .setInputCols(Stream.iterate(0, c -> c + 1).limit(COLUMNS).map(c -> "c" + c).toArray(String[]::new))
          .setOutputCol("features").transform(table);
      vectors.createOrReplaceTempView("vectors");
      Dataset<Row> bySql = spark.sql("SELECT *, predict('mlp', features) AS scores FROM vectors");
      Dataset<Row> byStageWithUri = new InferenceTransformer().setModelName("mlp").setModelUri(mlpFile.toUri().toString())
          .setInputCols(new String[] {"features"}).setOutputCol("scores").transform(vectors);
      Dataset<Row> byStageRegistered = new InferenceTransformer().setModelName("mlp")
          .setInputCols(new String[] {"features"}).setOutputCol("scores").transform(vectors);
      Expression sqlCall = onlyCall(bySql);
      assertThat(onlyCall(byStageWithUri)).isEqualTo(sqlCall);
      assertThat(onlyCall(byStageRegistered)).isEqualTo(sqlCall);
      assertThat(byStageWithUri.collectAsList()).containsExactlyInAnyOrderElementsOf(bySql.collectAsList());
    } finally {
      SparkInference.unregister(spark, "mlp");
      spark.catalog().dropTempView("vectors");
    }
  }

  @Test
  void transformSchemaChecksLikeTheAnalyzer() {
    InferenceTransformer stage = new InferenceTransformer().setModelName("mlp").setModelUri(mlpFile.toUri().toString())
        .setInputCols(new String[] {"id"}).setOutputCol("scores");
    assertThatThrownBy(() -> stage.transformSchema(table.schema()))
        .hasMessageContaining("Cannot feed column of type bigint to model 'mlp' input 'features'");
    StructType vectorSchema = table.schema().add("features", new org.apache.spark.ml.linalg.VectorUDT(), false);
    StructType output = stage.setInputCols(new String[] {"features"}).transformSchema(vectorSchema);
    assertThat(output.apply("scores").dataType()).isEqualTo(DataTypes.createArrayType(DataTypes.FloatType, false));
    assertThatThrownBy(() -> new InferenceTransformer().setModelName("nowhere").setInputCols(new String[] {"features"})
        .transformSchema(vectorSchema)).hasMessageContaining("Unknown model 'nowhere'");
    assertThatThrownBy(() -> stage.setPrecision("int3")).hasMessageContaining("precision");
    assertThatThrownBy(() -> new InferenceTransformer().setModelName("mlp").setModelUri(mlpFile.toUri().toString())
        .setInputCols(new String[] {"features"}).setDevice("tpu:0").transformSchema(vectorSchema))
        .hasMessageContaining("Invalid value 'tpu:0' for spark.sparkinfer.device (model 'mlp')");
  }

  @Test
  void errorColumnAndOnErrorParams() {
    List<Row> rows = List.of(RowFactory.create(1L, floats(COLUMNS)), RowFactory.create(2L, floats(COLUMNS - 1)));
    Dataset<Row> arrays = spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false)));
    InferenceTransformer stage = new InferenceTransformer().setModelName("mlp").setModelUri(mlpFile.toUri().toString())
        .setInputCols(new String[] {"features"}).setOutputCol("scores").setErrorCol("why");
    List<Row> result = stage.transform(arrays).orderBy("id").collectAsList();
    assertThat(result.get(0).isNullAt(3)).isTrue();
    assertThat(result.get(0).getList(2)).hasSize(3);
    assertThat(result.get(1).isNullAt(2)).isTrue();
    assertThat(result.get(1).getString(3)).contains("expects 8 values per row").contains("but a row has 7 values");
    assertThatThrownBy(() -> new InferenceTransformer().setModelName("mlp").setModelUri(mlpFile.toUri().toString())
        .setInputCols(new String[] {"features"}).transform(arrays).collect()).hasMessageContaining("has 7 values");
  }

  @Test
  void inputNamesAndOutputColsMapModelInputsAndOutputsToColumns() {
    Path multi = TestModels.writeMultiIo(folder);
    Dataset<Row> input = spark.sql("SELECT CAST(id AS FLOAT) AS x, array(CAST(id AS FLOAT), 1F, 2F) AS y FROM range(5)");
    // Columns in another order than the model's inputs (a, b), mapped by name.
    Dataset<Row> out = new InferenceTransformer().setModelName("multi").setModelUri(multi.toUri().toString())
        .setInputCols(new String[] {"y", "x"}).setInputNames(new String[] {"b", "a"})
        .setOutputs(new String[] {"total", "total_id"}).setOutputCols(new String[] {"t", "tid"}).transform(input);
    assertThat(out.columns()).containsExactly("x", "y", "t", "tid");
    for (Row row : out.collectAsList()) {
      float x = row.getFloat(0);
      // total = a + sum(b) = x + (x + 1 + 2), as writeMultiIo builds it; total_id the same as int64.
      assertThat(row.getFloat(2)).isEqualTo(2 * x + 3);
      assertThat(row.getLong(3)).isEqualTo((long) (2 * x + 3));
    }
    assertThatThrownBy(() -> new InferenceTransformer().setModelName("multi").setModelUri(multi.toUri().toString())
        .setInputCols(new String[] {"x", "y"}).setOutputCols(new String[] {"t"}).transform(input))
        .hasMessageContaining("1 outputCols for 3 model outputs [total, total_id, grid]");
  }

  @Test
  void embedStageWithItsTokenizerSavesLoadsAndMatchesDirectOrtOnTheTokenizersIds() throws Exception {
    Path model = TestModels.copyMiniLm(folder);
    Path tokenizerFile = TestModels.copyResource(folder, "all-minilm-l6-v2-tokenizer.json");
    InferenceTransformer embedder = new InferenceTransformer().setFunction("embed").setModelName("minilm_stage")
        .setModelUri(model.toUri().toString()).setTokenizerUri(tokenizerFile.toUri().toString())
        .setInputCols(new String[] {"body"}).setOutputCol("vector").setPooling("mean");
    Path saved = folder.resolve("embedder");
    embedder.write().overwrite().save(saved.toString());
    InferenceTransformer loaded = InferenceTransformer.load(saved.toString());
    assertThat(loaded.getOrDefault(loaded.tokenizerUri())).endsWith("/embedder/tokenizer/all-minilm-l6-v2-tokenizer.json");
    List<String> texts = List.of("Spark runs the model next to the data.", "A short one.", "Ünïcödé and emoji 🚀 too");
    Dataset<Row> docs = spark.createDataFrame(
        texts.stream().map(text -> RowFactory.create(text)).collect(java.util.stream.Collectors.toList()),
        new StructType().add("body", DataTypes.StringType));
    List<Row> rows = loaded.transform(docs).collectAsList();
    try (ai.djl.huggingface.tokenizers.HuggingFaceTokenizer tokenizer =
            ai.djl.huggingface.tokenizers.HuggingFaceTokenizer.newInstance(tokenizerFile);
        OrtSession session = OrtEnvironment.getEnvironment().createSession(model.toString())) {
      for (Row row : rows) {
        float[] expected = io.github.sparkinfer.spark.reference.MiniLmReference.meanPooledUnit(
            session, tokenizer.encode(row.getString(0)).getIds());
        List<Float> actual = row.getList(1);
        double dot = 0;
        for (int k = 0; k < expected.length; k++) {
          dot += expected[k] * actual.get(k);
        }
        // The same model on the same ids; in a padded batch vs alone, fp32 sums run in another order.
        assertThat(dot).as("cosine for %s", row.getString(0)).isGreaterThan(0.999999);
      }
    }
  }

  private static List<Float> floats(int count) {
    List<Float> list = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      list.add(0.5f * i);
    }
    return list;
  }

  private static Expression onlyCall(Dataset<Row> frame) {
    List<BatchPredict> calls = new ArrayList<>();
    frame.queryExecution().optimizedPlan().foreach(node -> {
      if (node instanceof BatchPredict) {
        calls.add((BatchPredict) node);
      }
      return null;
    });
    assertThat(calls).hasSize(1);
    return ((Expression) calls.get(0).prediction()).canonicalized();
  }

  private static void assertResults(Dataset<Row> result, Map<Long, float[]> expected) {
    List<Row> rows = result.select("id", "scores", "first_score").collectAsList();
    assertThat(rows).hasSize(ROWS);
    for (Row row : rows) {
      float[] reference = expected.get(row.getLong(0));
      List<Float> scores = row.getList(1);
      for (int k = 0; k < reference.length; k++) {
        // The same model and inputs on the same CPU; other batch compositions: sums of 8 and 16 terms.
        assertThat(scores.get(k)).isCloseTo(reference[k], within(1e-5f));
      }
      assertThat(row.getFloat(2)).isEqualTo(scores.get(0));
    }
  }

  /** Each row through ONNX Runtime directly, from the values the test made. */
  private static Map<Long, float[]> directOrt() throws Exception {
    Map<Long, float[]> expected = new java.util.HashMap<>();
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession session = environment.createSession(mlpFile.toString())) {
      for (int i = 0; i < ROWS; i++) {
        try (OnnxTensor input = OnnxTensor.createTensor(environment, FloatBuffer.wrap(values[i]), new long[] {1, COLUMNS});
            OrtSession.Result output = session.run(Map.of("features", input))) {
          expected.put((long) i, ((float[][]) output.get(0).getValue())[0]);
        }
      }
    }
    return expected;
  }
}
