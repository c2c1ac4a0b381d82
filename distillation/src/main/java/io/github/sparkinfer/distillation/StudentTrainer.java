package io.github.sparkinfer.distillation;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.functions;
import org.tribuo.MutableDataset;
import org.tribuo.ONNXExportable;
import org.tribuo.Trainer;
import org.tribuo.impl.ArrayExample;
import org.tribuo.math.optimisers.AdaGrad;
import org.tribuo.provenance.SimpleDataSourceProvenance;
import org.tribuo.regression.RegressionFactory;
import org.tribuo.regression.Regressor;
import org.tribuo.regression.sgd.fm.FMRegressionTrainer;
import org.tribuo.regression.sgd.linear.LinearSGDTrainer;
import org.tribuo.regression.sgd.objectives.SquaredLoss;

/**
 * Trains a student on a teacher-labelled training set ({@link TeacherLabels}) with Tribuo's SGD
 * regression trainers, on the driver: every soft-target dimension is a regression output, squared
 * loss, AdaGrad. Two students: {@link Architecture#LINEAR} (one matrix) and
 * {@link Architecture#FACTORIZATION_MACHINE} (linear plus pairwise feature interactions through
 * {@code factors}-dimensional embeddings). The student comes out as ONNX (Tribuo's own export) and
 * runs through sparkinfer like any model; a factorization machine's as {@link CompactStudentGraph}
 * lays it out, checked against Tribuo's own graph on the first training rows.
 *
 * <p>The training set is read from Spark: up to {@link Builder#maxRows} rows (a random sample of
 * that many when the set is larger), streamed to the driver partition by partition.
 */
public final class StudentTrainer {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(StudentTrainer.class);
  private static final int CHECKED_ROWS = 256;

  /** The student's form. */
  public enum Architecture {
    LINEAR,
    FACTORIZATION_MACHINE
  }

  private final String features;
  private final String target;
  private final Architecture architecture;
  private final int factors;
  private final int epochs;
  private final double learningRate;
  private final int minibatch;
  private final long maxRows;
  private final long seed;

  private StudentTrainer(Builder builder) {
    this.features = builder.features;
    this.target = builder.target;
    this.architecture = builder.architecture;
    this.factors = builder.factors;
    this.epochs = builder.epochs;
    this.learningRate = builder.learningRate;
    this.minibatch = builder.minibatch;
    this.maxRows = builder.maxRows;
    this.seed = builder.seed;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Trains on {@code trainingSet} (a features column array&lt;float|double&gt; and a target column array&lt;float&gt;). */
  public Student train(Dataset<Row> trainingSet) {
    for (String column : List.of(features, target)) {
      if (!List.of(trainingSet.columns()).contains(column)) {
        throw new IllegalArgumentException("Cannot train a student: the training set has no column '" + column
            + "' (its columns: " + String.join(", ", trainingSet.columns()) + "). Name the columns with features(...)"
            + " and target(...)");
      }
    }
    long start = System.nanoTime();
    long available = trainingSet.count();
    Dataset<Row> rows = trainingSet.select(functions.col(features).cast("array<double>"),
        functions.col(target).cast("array<double>"));
    if (available > maxRows) {
      // A little over the fraction, then cut: sample() gives about, not exactly, that many rows.
      rows = rows.sample(false, Math.min(1.0, 1.05 * maxRows / available), seed).limit((int) maxRows);
    }
    RegressionFactory factory = new RegressionFactory();
    MutableDataset<Regressor> dataset = new MutableDataset<>(
        new SimpleDataSourceProvenance("sparkinfer teacher labels", factory), factory);
    String[] featureNames = null;
    String[] dimensionNames = null;
    long index = 0;
    // The first rows, kept to check the compact graph against Tribuo's on them.
    List<float[]> sample = new java.util.ArrayList<>();
    Iterator<Row> iterator = rows.toLocalIterator();
    while (iterator.hasNext()) {
      Row row = iterator.next();
      if (row.isNullAt(0) || row.isNullAt(1)) {
        throw new IllegalArgumentException("Cannot train a student: row " + index + " of the training set has a null "
            + (row.isNullAt(0) ? "'" + features + "'" : "'" + target + "'") + ". Drop such rows first (where(...isNotNull()))");
      }
      List<Double> x = row.getList(0);
      List<Double> y = row.getList(1);
      if (featureNames == null) {
        featureNames = names("f", x.size());
        dimensionNames = names("d", y.size());
      }
      if (x.size() != featureNames.length || y.size() != dimensionNames.length) {
        throw new IllegalArgumentException(String.format(Locale.ROOT, "Cannot train a student: row %d of the training"
            + " set has %d features and %d targets, the first had %d and %d. Every row needs the same lengths",
            index, x.size(), y.size(), featureNames.length, dimensionNames.length));
      }
      double[] values = unboxed(x);
      dataset.add(new ArrayExample<>(new Regressor(dimensionNames, unboxed(y)), featureNames, values));
      if (sample.size() < CHECKED_ROWS) {
        float[] row32 = new float[values.length];
        for (int i = 0; i < values.length; i++) {
          row32[i] = (float) values[i];
        }
        sample.add(row32);
      }
      index++;
    }
    if (featureNames == null) {
      throw new IllegalArgumentException("Cannot train a student: the training set is empty");
    }
    if (dataset.getFeatureIDMap().size() != featureNames.length) {
      throw new IllegalArgumentException("Cannot train a student: " + (featureNames.length
          - dataset.getFeatureIDMap().size()) + " of the " + featureNames.length + " features are 0 in every row, so"
          + " the student would take fewer inputs than the teacher. Drop those features or label more rows");
    }
    double readSeconds = (System.nanoTime() - start) / 1e9;
    org.tribuo.Model<Regressor> model = trainer().train(dataset);
    double seconds = (System.nanoTime() - start) / 1e9;
    byte[] onnx;
    try {
      Path file = Files.createTempFile("sparkinfer-student", ".onnx");
      try {
        ((ONNXExportable) model).saveONNXModel("io.github.sparkinfer.distillation", 1, file);
        onnx = Files.readAllBytes(file);
      } finally {
        Files.deleteIfExists(file);
      }
    } catch (java.io.IOException e) {
      throw new IllegalStateException("Cannot export the student to ONNX: " + e.getMessage(), e);
    }
    byte[] served = onnx;
    if (architecture == Architecture.FACTORIZATION_MACHINE) {
      byte[] compact = CompactStudentGraph.compact(onnx);
      if (compact == null) {
        LOG.warn("Tribuo's factorization-machine export has a layout this sparkinfer does not know; the student keeps"
            + " Tribuo's own graph (correct, slower)");
      } else {
        checkSame(onnx, compact, sample);
        served = compact;
      }
    }
    return new Student(model, served, onnx, describe(), featureNames.length, dimensionNames.length, index, readSeconds,
        seconds - readSeconds);
  }

  /** Both graphs on the same rows through ONNX Runtime: the compact one must compute what Tribuo's does. */
  private static void checkSame(byte[] tribuo, byte[] compact, List<float[]> rows) {
    float[][] expected = OnnxRuns.run(tribuo, rows);
    float[][] actual = OnnxRuns.run(compact, rows);
    for (int r = 0; r < expected.length; r++) {
      for (int k = 0; k < expected[r].length; k++) {
        double tolerance = 1e-4 * (1 + Math.abs(expected[r][k]));
        if (!(Math.abs(actual[r][k] - expected[r][k]) <= tolerance)) {
          throw new IllegalStateException(String.format(Locale.ROOT, "The compact factorization-machine graph differs"
              + " from Tribuo's export on training row %d, output %d: %s vs %s. This is a sparkinfer bug; please report"
              + " it", r, k, actual[r][k], expected[r][k]));
        }
      }
    }
  }

  private Trainer<Regressor> trainer() {
    // Log lines every that many examples: none during training.
    int loggingInterval = Integer.MAX_VALUE;
    AdaGrad optimiser = new AdaGrad(learningRate, 0.1);
    return architecture == Architecture.LINEAR
        ? new LinearSGDTrainer(new SquaredLoss(), optimiser, epochs, loggingInterval, minibatch, seed)
        : new FMRegressionTrainer(new SquaredLoss(), optimiser, epochs, loggingInterval, minibatch, seed, factors, 0.1,
            true);
  }

  private String describe() {
    return String.format(Locale.ROOT, "%s, %d epochs, AdaGrad %s, minibatch %d, seed %d (Tribuo)",
        architecture == Architecture.LINEAR ? "linear" : "factorization machine, " + factors + " factors", epochs,
        learningRate, minibatch, seed);
  }

  private static String[] names(String prefix, int count) {
    // Zero-padded: Tribuo orders features and outputs by name, so the ONNX columns keep their order.
    String[] names = new String[count];
    for (int i = 0; i < count; i++) {
      names[i] = String.format(Locale.ROOT, "%s%06d", prefix, i);
    }
    return names;
  }

  private static double[] unboxed(List<Double> values) {
    double[] result = new double[values.size()];
    for (int i = 0; i < result.length; i++) {
      Double value = values.get(i);
      result[i] = value == null ? Double.NaN : value;
    }
    return result;
  }

  public static final class Builder {
    private String features = "features";
    private String target = TeacherLabels.TARGET_COLUMN;
    private Architecture architecture = Architecture.FACTORIZATION_MACHINE;
    private int factors = 8;
    private int epochs = 10;
    private double learningRate = 0.1;
    private int minibatch = 16;
    private long maxRows = 200_000;
    private long seed = 42;

    private Builder() {}

    /** The input column (default {@code features}). */
    public Builder features(String column) {
      features = Objects.requireNonNull(column, "column");
      return this;
    }

    /** The soft-target column (default {@link TeacherLabels#TARGET_COLUMN}). */
    public Builder target(String column) {
      target = Objects.requireNonNull(column, "column");
      return this;
    }

    public Builder linear() {
      architecture = Architecture.LINEAR;
      return this;
    }

    /** A factorization machine with {@code factors}-dimensional feature embeddings (default 8). */
    public Builder factorizationMachine(int factors) {
      if (factors < 1) {
        throw new IllegalArgumentException("Invalid factor count " + factors + ": give at least 1");
      }
      architecture = Architecture.FACTORIZATION_MACHINE;
      this.factors = factors;
      return this;
    }

    public Builder epochs(int value) {
      if (value < 1) {
        throw new IllegalArgumentException("Invalid epoch count " + value + ": give at least 1");
      }
      epochs = value;
      return this;
    }

    public Builder learningRate(double value) {
      if (!(value > 0)) {
        throw new IllegalArgumentException("Invalid learning rate " + value + ": give a positive number");
      }
      learningRate = value;
      return this;
    }

    public Builder minibatch(int rows) {
      if (rows < 1) {
        throw new IllegalArgumentException("Invalid minibatch size " + rows + ": give at least 1");
      }
      minibatch = rows;
      return this;
    }

    /** The most training rows read to the driver (default 200,000). */
    public Builder maxRows(long rows) {
      if (rows < 1) {
        throw new IllegalArgumentException("Invalid row limit " + rows + ": give at least 1");
      }
      maxRows = rows;
      return this;
    }

    public Builder seed(long value) {
      seed = value;
      return this;
    }

    public StudentTrainer build() {
      return new StudentTrainer(this);
    }
  }
}
