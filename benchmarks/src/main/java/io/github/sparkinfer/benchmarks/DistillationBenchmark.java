package io.github.sparkinfer.benchmarks;

import io.github.sparkinfer.compression.MultilayerPerceptronModel;
import io.github.sparkinfer.distillation.PromotionGate;
import io.github.sparkinfer.distillation.Student;
import io.github.sparkinfer.distillation.StudentTrainer;
import io.github.sparkinfer.distillation.TeacherLabels;
import io.github.sparkinfer.spark.ModelValidation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * Distillation, measured (issue 19): the teacher MLP 64-256-256-16 (seed 42, as TabularBenchmark)
 * labels --label-rows rows (its 16 logits) to Parquet — timed beside the same rows through
 * predict() to the noop sink and the rows written to Parquet without the teacher; students of three
 * sizes (Tribuo: linear, factorization machines with 8 and 16 factors) train on --train-rows of the
 * labels; each student and the teacher score --held-out-rows other rows (best of --repeat after a
 * warm-up, noop sink), and the gate ({@link PromotionGate}, argmax agreement ≥ --gate) judges each
 * on them. Writes its section of RESULTS.md.
 */
public final class DistillationBenchmark {
  private DistillationBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    long labelRows = 1_000_000;
    long trainRows = 200_000;
    long heldOutRows = 2_000_000;
    int repeat = 3;
    int epochs = 10;
    double gate = 0.9;
    int cores = Runtime.getRuntime().availableProcessors();
    Path results = Path.of("benchmarks/RESULTS.md");
    Path work = Path.of("target/benchmark-data");
    for (int i = 0; i < arguments.length; i += 2) {
      switch (arguments[i]) {
        case "--label-rows": labelRows = Long.parseLong(arguments[i + 1]); break;
        case "--train-rows": trainRows = Long.parseLong(arguments[i + 1]); break;
        case "--held-out-rows": heldOutRows = Long.parseLong(arguments[i + 1]); break;
        case "--repeat": repeat = Integer.parseInt(arguments[i + 1]); break;
        case "--epochs": epochs = Integer.parseInt(arguments[i + 1]); break;
        case "--gate": gate = Double.parseDouble(arguments[i + 1]); break;
        case "--cores": cores = Integer.parseInt(arguments[i + 1]); break;
        case "--results": results = Path.of(arguments[i + 1]); break;
        case "--work-dir": work = Path.of(arguments[i + 1]); break;
        default: throw new IllegalArgumentException("Unknown argument " + arguments[i] + "; use --label-rows,"
            + " --train-rows, --held-out-rows, --repeat, --epochs, --gate, --cores, --results, --work-dir");
      }
    }
    Files.createDirectories(work);
    SparkSession spark = LocalSpark.session("sparkinfer-distillation-benchmark", cores);
    Path teacher = work.resolve("distillation-teacher.onnx");
    MultilayerPerceptronModel.builder().layerSizes(64, 256, 256, 16).seed(42).inputName("features")
        .outputName("scores").build().writeTo(teacher);
    spark.conf().set("spark.sparkinfer.model.teacher.path", teacher.toUri().toString());
    // Labelled rows are ids [0, labelRows); held-out rows follow them, never seen by a student.
    Dataset<Row> labelled = TabularData.generate(spark, labelRows, cores * 2).cache();
    labelled.count();
    Dataset<Row> heldOut = TabularData.generate(spark, labelRows + heldOutRows, cores * 2)
        .where("id >= " + labelRows).cache();
    heldOut.count();

    // (a) The labelling job, beside predict() alone and the Parquet write alone.
    Path labels = work.resolve("distillation-labels.parquet");
    Path copy = work.resolve("distillation-inputs.parquet");
    TeacherLabels labeller = TeacherLabels.builder("teacher").keep("id").inputs("features").build();
    double labelSeconds = Double.MAX_VALUE;
    double writeSeconds = Double.MAX_VALUE;
    TeacherLabels.LabelledSet set = null;
    for (int run = 0; run < repeat; run++) {
      delete(labels);
      set = labeller.write(labelled, labels.toUri().toString());
      labelSeconds = Math.min(labelSeconds, set.seconds());
      delete(copy);
      long start = System.nanoTime();
      labelled.write().mode(SaveMode.ErrorIfExists).parquet(copy.toUri().toString());
      writeSeconds = Math.min(writeSeconds, (System.nanoTime() - start) / 1e9);
    }
    double predictRate = rate(spark, labelled, "teacher", labelRows, repeat);
    RunEnvironment.log("labelling %s; Parquet alone %.2f s; predict alone %,.0f rows/s", set, writeSeconds, predictRate);

    List<String> body = new ArrayList<>();
    body.add("<!-- Written by io.github.sparkinfer.benchmarks.DistillationBenchmark: run it again rather than editing this section. -->");
    body.add("");
    body.add(String.format(Locale.ROOT, "%s, commit %s, CPU %s, local[%d]; best of %d runs (after a warm-up for the"
        + " predict() rows), noop sink. Teacher: the MLP 64-256-256-16 of the tabular benchmark (random weights, seed"
        + " 42), its 16 logits the soft targets. Students: Tribuo's SGD regression on those logits (squared loss,"
        + " AdaGrad 0.1, %d epochs, minibatch 16), trained on the driver on %,d of the labelled rows, exported to ONNX"
        + " by Tribuo; judged on %,d held-out rows by `PromotionGate` (`ModelValidation`), gate: argmax agreement ≥ %.2f.",
        Instant.now(), RunEnvironment.gitCommit(), RunEnvironment.cpuModel(), cores, repeat, epochs, trainRows,
        heldOutRows, gate));
    body.add("");
    body.add("Labelling job (a), " + String.format(Locale.ROOT, "%,d", labelRows) + " rows:");
    body.add("");
    body.add("| step | seconds | rows/s |");
    body.add("|---|---:|---:|");
    body.add(String.format(Locale.ROOT, "| teacher predict() → noop (the batch path alone) | %.2f | %,.0f |",
        labelRows / predictRate, predictRate));
    body.add(String.format(Locale.ROOT, "| the rows → Parquet, no teacher (the write alone) | %.2f | %,.0f |",
        writeSeconds, labelRows / writeSeconds));
    body.add(String.format(Locale.ROOT, "| `TeacherLabels.write`: teacher → soft targets → Parquet | %.2f | %,.0f |",
        labelSeconds, labelRows / labelSeconds));
    body.add("");
    body.add("Students (b, c):");
    body.add("");
    body.add("| model | ONNX bytes | training s (read + train) | rows/s | vs teacher | mean cosine | lowest cosine |"
        + " max abs error | argmax agreement | gate |");
    body.add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    double teacherRate = rate(spark, heldOut, "teacher", heldOutRows, repeat);
    body.add(String.format(Locale.ROOT, "| teacher MLP 64-256-256-16 | %,d | | %,.0f | 1.00 | 1 | 1 | 0 | 1 | |",
        Files.size(teacher), teacherRate));
    List<StudentTrainer.Builder> students = List.of(StudentTrainer.builder().linear(),
        StudentTrainer.builder().factorizationMachine(8), StudentTrainer.builder().factorizationMachine(16));
    List<String> names = List.of("linear", "factorization machine, 8 factors", "factorization machine, 16 factors");
    Dataset<Row> trainingSet = spark.read().parquet(labels.toUri().toString());
    for (int s = 0; s < students.size(); s++) {
      Student student = students.get(s).epochs(epochs).maxRows(trainRows).build().train(trainingSet);
      String name = "student" + s;
      Path file = work.resolve("distillation-" + name + ".onnx");
      student.writeTo(file.toUri().toString(), spark.sparkContext().hadoopConfiguration());
      spark.conf().set("spark.sparkinfer.model." + name + ".path", file.toUri().toString());
      RunEnvironment.log("%s", student);
      double studentRate = rate(spark, heldOut, name, heldOutRows, repeat);
      String verdict;
      ModelValidation.Report report;
      try {
        report = PromotionGate.builder("teacher", name).inputs("features").minArgmaxAgreement(gate).build()
            .promote(heldOut, "scorer");
        verdict = "promoted";
      } catch (PromotionGate.PromotionRefusedException e) {
        report = e.report();
        verdict = "refused";
      }
      body.add(String.format(Locale.ROOT, "| %s | %,d | %.1f + %.1f | %,.0f | %.2f | %.6f | %.6f | %.3g | %.4f | %s |",
          names.get(s), Files.size(file), student.readSeconds(), student.trainSeconds(), studentRate,
          studentRate / teacherRate, report.meanCosine(), report.minCosine(), report.maxAbsError(),
          report.argmaxAgreement(), verdict));
    }
    body.add("");
    body.add("Read with care: a linear model or a factorization machine (pairwise interactions) imitates a random-weight"
        + " ReLU MLP only so far; the argmax agreement and mean cosine above are on rows no student saw, and the gate"
        + " refuses a student under its threshold, as it should. The speed-ups are the students' smaller arithmetic; the"
        + " factorization machines run in sparkinfer's compact layout (`CompactStudentGraph`: one Gemm per term for all"
        + " outputs, 12 nodes, checked against Tribuo's own export at train time), whose file also stores V² beside V."
        + " Labelling costs about the Parquet write plus the teacher; training runs on the driver, single-threaded in Tribuo.");
    body.add("");
    body.add("Reproduce: `./mvnw -q -B install -DskipTests && ./mvnw -q -B -pl benchmarks exec:exec"
        + " -Dbenchmark.main=io.github.sparkinfer.benchmarks.DistillationBenchmark`; the worked example:"
        + " `./mvnw -q -B -pl examples exec:exec -Dmain.class=io.github.sparkinfer.examples.DistillationJob`.");
    ResultsFile.replaceSection(results, "## Distillation (issue 19)", String.join("\n", body));
    body.forEach(System.out::println);
    spark.stop();
  }

  private static double rate(SparkSession spark, Dataset<Row> rows, String model, long count, int repeat) {
    Measurement measurement = QueryRunner.time(model, "predict('" + model + "', features)", count, repeat,
        () -> io.github.sparkinfer.spark.Inference.model(model).input("features").as("s").transform(rows),
        () -> io.github.sparkinfer.spark.Inference.model(model).input("features").as("s").transform(rows.limit(1000)));
    RunEnvironment.log("%s", measurement.describe());
    return measurement.bestRowsPerSecond();
  }

  private static void delete(Path path) throws java.io.IOException {
    if (!Files.exists(path)) {
      return;
    }
    try (Stream<Path> files = Files.walk(path)) {
      for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(file);
      }
    }
  }
}
