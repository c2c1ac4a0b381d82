package io.github.sparkinfer.examples;

import io.github.sparkinfer.distillation.PromotionGate;
import io.github.sparkinfer.distillation.Student;
import io.github.sparkinfer.distillation.StudentTrainer;
import io.github.sparkinfer.distillation.TeacherLabels;
import io.github.sparkinfer.spark.ModelValidation;
import io.github.sparkinfer.spark.SparkInference;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Locale;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Distillation end to end on Spark: a teacher MLP (64-256-256-16, the demo's) labels a table, a
 * small student (Tribuo's factorization machine) is trained on the labels and exported to ONNX,
 * and the gate promotes it to the serving name {@code scorer} only if it agrees with the teacher on
 * held-out rows; then both score the held-out rows, timed side by side.
 *
 * <pre>
 * ./mvnw -q -B -pl examples exec:exec -Dmain.class=io.github.sparkinfer.examples.DistillationJob
 * spark-submit --class io.github.sparkinfer.examples.DistillationJob sparkinfer-examples-&lt;version&gt;-spark-submit.jar \
 *   --rows 1000000 --work-dir /tmp/distill
 * </pre>
 *
 * <p>Arguments: --rows N (400,000; one in ten held out), --work-dir DIR (a new temporary folder),
 * --factors N (16), --epochs N (10), --max-train-rows N (200,000), --min-agreement A (0.9: the
 * gate's argmax agreement); --demo is accepted and changes nothing. Exit status 0 when promoted, 3 when the gate refused, 2 for bad arguments.
 */
public final class DistillationJob {
  static final String TEACHER = "teacher";
  static final String CANDIDATE = "student_candidate";
  static final String SERVING = "scorer";

  private DistillationJob() {}

  public static void main(String[] args) throws IOException {
    Arguments arguments;
    try {
      arguments = Arguments.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("Bad arguments: " + e.getMessage());
      System.exit(2);
      return;
    }
    SparkSession spark = SparkSession.builder().appName("sparkinfer-distillation")
        .master(System.getProperty("spark.master", "local[*]")).getOrCreate();
    SparkInference.install(spark);
    Path work = arguments.workDirectory != null ? arguments.workDirectory
        : Files.createTempDirectory("sparkinfer-distillation-");
    int status;
    try {
      status = run(spark, arguments, work, System.out).promoted ? 0 : 3;
    } finally {
      spark.stop();
    }
    System.exit(status);
  }

  /** What the job did. */
  static final class Result {
    final boolean promoted;
    final ModelValidation.Report report;
    final Student student;
    final double teacherRowsPerSecond;
    final double studentRowsPerSecond;

    Result(boolean promoted, ModelValidation.Report report, Student student, double teacherRowsPerSecond,
        double studentRowsPerSecond) {
      this.promoted = promoted;
      this.report = report;
      this.student = student;
      this.teacherRowsPerSecond = teacherRowsPerSecond;
      this.studentRowsPerSecond = studentRowsPerSecond;
    }
  }

  static Result run(SparkSession spark, Arguments arguments, Path work, PrintStream out) throws IOException {
    Files.createDirectories(work);
    Path teacher = work.resolve("teacher.onnx");
    ScoreParquetJob.demoModel().writeTo(teacher);
    spark.conf().set("spark.sparkinfer.model." + TEACHER + ".path", teacher.toUri().toString());
    int partitions = Math.max(2, spark.sparkContext().defaultParallelism());
    Dataset<Row> table = ScoreParquetJob.demoData(spark, arguments.rows, 64, "features").repartition(partitions);
    Dataset<Row> training = table.where("id % 10 != 0");
    Dataset<Row> heldOut = table.where("id % 10 = 0").cache();
    out.printf(Locale.ROOT, "sparkinfer DistillationJob: teacher MLP 64-256-256-16 (seed %d), %,d rows (%,d held out),"
        + " master %s%n", ScoreParquetJob.DEMO_SEED, arguments.rows, heldOut.count(), spark.sparkContext().master());

    // (a) The teacher labels the training rows: its 16 logits per row, beside the features, in Parquet.
    Path labels = work.resolve("labels.parquet");
    deleteRecursively(labels);
    TeacherLabels.LabelledSet set = TeacherLabels.builder(TEACHER).keep("id").inputs("features").build()
        .write(training, labels.toUri().toString());
    out.println("1. " + set);

    // (b) The student: a factorization machine trained by Tribuo on the logits, exported to ONNX.
    Student student = StudentTrainer.builder().features("features").target(TeacherLabels.TARGET_COLUMN)
        .factorizationMachine(arguments.factors).epochs(arguments.epochs).maxRows(arguments.maxTrainRows).build()
        .train(spark.read().parquet(labels.toUri().toString()));
    Path studentFile = work.resolve("student.onnx");
    student.writeTo(studentFile.toUri().toString(), spark.sparkContext().hadoopConfiguration());
    spark.conf().set("spark.sparkinfer.model." + CANDIDATE + ".path", studentFile.toUri().toString());
    out.printf(Locale.ROOT, "2. %s; teacher %,d bytes%n", student, Files.size(teacher));

    // (c) The gate: agreement with the teacher on the held-out rows (a Spark job), then promotion.
    PromotionGate gate = PromotionGate.builder(TEACHER, CANDIDATE).inputs("features")
        .minArgmaxAgreement(arguments.minAgreement).build();
    boolean promoted;
    ModelValidation.Report report;
    try {
      report = gate.promote(heldOut, SERVING);
      promoted = true;
      out.printf(Locale.ROOT, "3. promoted to '%s': %s%n", SERVING, report);
    } catch (PromotionGate.PromotionRefusedException e) {
      report = e.report();
      promoted = false;
      out.println("3. refused: " + e.getMessage());
    }

    // Speed: the teacher and the student over the held-out rows, side by side, best of 3.
    double teacherRate = rate(spark, heldOut, TEACHER);
    double studentRate = rate(spark, heldOut, CANDIDATE);
    out.printf(Locale.ROOT, "4. predict() over the held-out rows: teacher %,.0f rows/s, student %,.0f rows/s (%.2f ×)%n",
        teacherRate, studentRate, studentRate / teacherRate);
    return new Result(promoted, report, student, teacherRate, studentRate);
  }

  private static double rate(SparkSession spark, Dataset<Row> rows, String model) {
    long count = rows.count();
    double best = 0;
    for (int run = 0; run < 3; run++) {
      long start = System.nanoTime();
      io.github.sparkinfer.spark.Inference.model(model).input("features").as("s").transform(rows)
          .write().format("noop").mode("overwrite").save();
      best = Math.max(best, count / ((System.nanoTime() - start) / 1e9));
    }
    return best;
  }

  private static void deleteRecursively(Path path) throws IOException {
    if (!Files.exists(path)) {
      return;
    }
    try (Stream<Path> files = Files.walk(path)) {
      for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(file);
      }
    }
  }

  static final class Arguments {
    long rows = 400_000;
    Path workDirectory;
    int factors = 16;
    int epochs = 10;
    long maxTrainRows = 200_000;
    double minAgreement = 0.9;

    static Arguments parse(String... args) {
      Arguments arguments = new Arguments();
      for (int i = 0; i < args.length; i += 2) {
        if (args[i].equals("--demo")) {
          // exec:exec passes it to every example; this job always makes its own data.
          i--;
          continue;
        }
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(args[i] + " needs a value");
        }
        String value = args[i + 1];
        try {
          switch (args[i]) {
            case "--rows" -> arguments.rows = Long.parseLong(value);
            case "--work-dir" -> arguments.workDirectory = Path.of(value);
            case "--factors" -> arguments.factors = Integer.parseInt(value);
            case "--epochs" -> arguments.epochs = Integer.parseInt(value);
            case "--max-train-rows" -> arguments.maxTrainRows = Long.parseLong(value);
            case "--min-agreement" -> arguments.minAgreement = Double.parseDouble(value);
            default -> throw new IllegalArgumentException("Unknown argument '" + args[i] + "': use --rows, --work-dir,"
                + " --factors, --epochs, --max-train-rows or --min-agreement");
          }
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(args[i] + " takes a number, got '" + value + "'");
        }
      }
      if (arguments.rows < 20) {
        throw new IllegalArgumentException("--rows must be at least 20, got " + arguments.rows);
      }
      return arguments;
    }
  }
}
