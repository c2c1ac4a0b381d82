package io.github.sparkinfer.distillation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.spark.Inference;
import io.github.sparkinfer.spark.ModelValidation;
import io.github.sparkinfer.spark.SparkInferenceExtensions;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
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
 * The distillation workflow on a real local Spark with the packaged jar (Tribuo shaded inside,
 * Spark's protobuf beside it): teacher labels checked against the teacher run by ONNX Runtime
 * directly, softened targets against a softmax computed here, the student's ONNX export run by
 * sparkinfer against Tribuo's own predictions in Java, and the gate promoting or refusing.
 */
class TestDistillation {
  private static final int FEATURES = 16;
  private static final int CLASSES = 4;

  @TempDir static Path folder;

  private static SparkSession spark;
  private static Path teacher;
  private static float[][] features;
  private static Dataset<Row> table;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SparkSession.builder().master("local[2]").appName("sparkinfer-distillation-tests")
        .config("spark.sql.extensions", SparkInferenceExtensions.class.getName())
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.host", "127.0.0.1").config("spark.sparkinfer.device", "cpu")
        .config("spark.sparkinfer.cache.dir", Files.createTempDirectory(folder, "cache").toString())
        .getOrCreate();
    teacher = folder.resolve("teacher.onnx");
    MultilayerPerceptronModel.builder().layerSizes(FEATURES, 64, 64, CLASSES).seed(3).inputName("features")
        .outputName("scores").build().writeTo(teacher);
    spark.conf().set("spark.sparkinfer.model.teacher.path", teacher.toUri().toString());
    SplittableRandom random = new SplittableRandom(17);
    features = new float[6000][FEATURES];
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < features.length; i++) {
      Float[] boxed = new Float[FEATURES];
      for (int k = 0; k < FEATURES; k++) {
        features[i][k] = (float) random.nextDouble(-1, 1);
        boxed[k] = features[i][k];
      }
      rows.add(RowFactory.create((long) i, boxed));
    }
    table = spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType)
        .add("features", DataTypes.createArrayType(DataTypes.FloatType, false))).repartition(3);
  }

  @AfterAll
  static void tearDown() {
    spark.stop();
  }

  @Test
  void labelsAreTheTeachersOutputsAndSoftenedProbabilities() throws Exception {
    String uri = folder.resolve("labels").toUri().toString();
    TeacherLabels.LabelledSet set = TeacherLabels.builder("teacher").keep("id").inputs("features").build().write(table, uri);
    assertThat(set.rows()).isEqualTo(features.length);
    assertThat(set.toString()).contains("6,000 rows labelled (the teacher's outputs)");
    float[][] expected = runTeacher(features);
    List<Row> written = spark.read().parquet(uri).orderBy("id").collectAsList();
    for (Row row : written) {
      int id = (int) row.getLong(row.fieldIndex("id"));
      List<Float> target = row.getList(row.fieldIndex(TeacherLabels.TARGET_COLUMN));
      for (int k = 0; k < CLASSES; k++) {
        assertThat(target.get(k)).isCloseTo(expected[id][k], Offset.offset(1e-5f));
      }
    }
    // The writer refuses to overwrite a training set.
    assertThatThrownBy(() -> TeacherLabels.builder("teacher").inputs("features").build().write(table, uri))
        .hasMessageContaining("already exists");

    List<Row> softened = TeacherLabels.builder("teacher").keep("id").inputs("features")
        .target(SoftTarget.probabilities(2.0)).build().label(table.limit(50)).collectAsList();
    for (Row row : softened) {
      int id = (int) row.getLong(0);
      List<Float> probabilities = row.getList(2);
      double sum = 0;
      double[] exps = new double[CLASSES];
      for (int k = 0; k < CLASSES; k++) {
        exps[k] = Math.exp(expected[id][k] / 2.0);
        sum += exps[k];
      }
      for (int k = 0; k < CLASSES; k++) {
        assertThat(probabilities.get(k)).isCloseTo((float) (exps[k] / sum), Offset.offset(1e-6f));
      }
    }
  }

  @Test
  void aStudentLearnsFromTheLabelsAndItsOnnxEqualsTribuo() throws Exception {
    Dataset<Row> training = table.where("id % 5 != 0");
    Dataset<Row> heldOut = table.where("id % 5 = 0");
    String uri = folder.resolve("train").toUri().toString();
    TeacherLabels.builder("teacher").keep("id").inputs("features").build().write(training, uri);
    Student student = StudentTrainer.builder().factorizationMachine(8).epochs(8).build()
        .train(spark.read().parquet(uri));
    assertThat(student.rows()).isEqualTo(4800);
    assertThat(student.features()).isEqualTo(FEATURES);
    assertThat(student.targets()).isEqualTo(CLASSES);
    Path file = folder.resolve("student.onnx");
    student.writeTo(file.toUri().toString(), spark.sparkContext().hadoopConfiguration());
    spark.conf().set("spark.sparkinfer.model.student.path", file.toUri().toString());

    // sparkinfer running the ONNX export (ORT) = Tribuo predicting in Java.
    List<Row> predicted = Inference.model("student").input("features").as("s").transform(heldOut.orderBy("id"))
        .limit(200).collectAsList();
    for (Row row : predicted) {
      int id = (int) row.getLong(0);
      List<Float> onnx = row.getList(2);
      double[] java = student.predictInJava(features[id]);
      for (int k = 0; k < CLASSES; k++) {
        assertThat((double) onnx.get(k)).isCloseTo(java[k], Offset.offset(1e-4 + 1e-4 * Math.abs(java[k])));
      }
    }

    // The served file is the compact layout, not Tribuo's 7-nodes-per-output export; a linear student
    // is Tribuo's file as it is, and its ONNX equals Tribuo too.
    assertThat(student.onnx()).isNotEqualTo(student.tribuoOnnx());
    assertThat(student.onnx().length).isLessThan(student.tribuoOnnx().length);
    Student linear = StudentTrainer.builder().linear().epochs(3).build().train(spark.read().parquet(uri));
    assertThat(linear.onnx()).isEqualTo(linear.tribuoOnnx());
    Path linearFile = folder.resolve("linear.onnx");
    linear.writeTo(linearFile.toUri().toString(), spark.sparkContext().hadoopConfiguration());
    spark.conf().set("spark.sparkinfer.model.linear_student.path", linearFile.toUri().toString());
    for (Row row : Inference.model("linear_student").input("features").as("s").transform(heldOut.orderBy("id"))
        .limit(50).collectAsList()) {
      double[] java = linear.predictInJava(features[(int) row.getLong(0)]);
      for (int k = 0; k < CLASSES; k++) {
        assertThat((double) row.<Float>getList(2).get(k)).isCloseTo(java[k], Offset.offset(1e-4 + 1e-4 * Math.abs(java[k])));
      }
    }

    // It learned: far above chance (1/4) on rows it never saw, and closer than a student that
    // always answers the mean.
    ModelValidation.Report report = PromotionGate.builder("teacher", "student").inputs("features").build()
        .report(heldOut);
    System.out.println("student vs teacher on held-out rows: " + report + "; " + student);
    assertThat(report.rows()).isEqualTo(1200);
    assertThat(report.argmaxAgreement()).isGreaterThan(0.6);

    // The gate: refused under the threshold (the serving name stays unregistered), promoted above it.
    assertThatThrownBy(() -> PromotionGate.builder("teacher", "student").inputs("features").minArgmaxAgreement(0.999)
        .build().promote(heldOut, "scorer"))
        .isInstanceOf(PromotionGate.PromotionRefusedException.class)
        .hasMessageContaining("Student 'student' is not promoted to 'scorer': on 1200 held-out rows")
        .hasMessageContaining("(needs 0.9990)")
        .hasMessageContaining("'scorer' keeps what it was registered to");
    assertThat(spark.conf().contains("spark.sparkinfer.model.scorer.path")).isFalse();
    PromotionGate.builder("teacher", "student").inputs("features").minArgmaxAgreement(0.5).build()
        .promote(heldOut, "scorer");
    assertThat(spark.conf().get("spark.sparkinfer.model.scorer.path")).isEqualTo(file.toUri().toString());
    Row served = spark.sql("SELECT predict('scorer', array(" + String.join(", ", literals(features[0]))
        + ")) AS s").first();
    double[] java = student.predictInJava(features[0]);
    assertThat((double) served.<Float>getList(0).get(0)).isCloseTo(java[0], Offset.offset(1e-4 + 1e-4 * Math.abs(java[0])));
  }

  @Test
  void badInputSaysWhatIsWrong() {
    assertThatThrownBy(() -> TeacherLabels.builder("teacher").inputs("missing").build().label(table))
        .hasMessageContaining("the table has no column 'missing'");
    assertThatThrownBy(() -> SoftTarget.probabilities(0)).hasMessageContaining("Invalid temperature 0.0");
    assertThatThrownBy(() -> StudentTrainer.builder().target("nope").build().train(table))
        .hasMessageContaining("the training set has no column 'nope'");
    Dataset<Row> ragged = spark.sql("SELECT array(1.0F, 2.0F) AS features, array(0.5F) AS soft_target"
        + " UNION ALL SELECT array(1.0F) AS features, array(0.5F) AS soft_target").coalesce(1);
    assertThatThrownBy(() -> StudentTrainer.builder().build().train(ragged))
        .hasMessageContaining("row 1 of the training set has 1 features and 1 targets, the first had 2 and 1");
  }

  private static String[] literals(float[] row) {
    String[] values = new String[row.length];
    for (int i = 0; i < row.length; i++) {
      values[i] = "CAST(" + row[i] + " AS FLOAT)";
    }
    return values;
  }

  private static float[][] runTeacher(float[][] rows) throws Exception {
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    FloatBuffer buffer = FloatBuffer.allocate(rows.length * FEATURES);
    for (float[] row : rows) {
      buffer.put(row);
    }
    buffer.flip();
    try (OrtSession session = environment.createSession(teacher.toString(), new OrtSession.SessionOptions());
        OnnxTensor input = OnnxTensor.createTensor(environment, buffer, new long[] {rows.length, FEATURES});
        OrtSession.Result result = session.run(Map.of("features", input))) {
      return (float[][]) result.get(0).getValue();
    }
  }
}
