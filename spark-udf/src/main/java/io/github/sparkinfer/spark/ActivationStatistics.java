package io.github.sparkinfer.spark;

import io.github.sparkinfer.compression.OnnxModel;
import io.github.sparkinfer.compression.StructuredPruner;
import io.github.sparkinfer.compression.UnitEnergyProbe;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;

/**
 * Activation statistics for pruning, measured by a Spark job over the user's own table: a probe
 * copy of the registered model ({@link UnitEnergyProbe}) runs through the batch path of
 * {@code predict()} or {@code embed()} (batching, devices, sessions as for any call), and the
 * squared activations of every prunable hidden unit are summed over all rows on the executors.
 * {@link Statistics#pruner(double)} then removes the units that contribute least on that data.
 *
 * <pre>{@code
 * ActivationStatistics.Statistics statistics = ActivationStatistics.builder("mlp").inputs("features")
 *     .build().collect(table.sample(0.01));
 * OnnxModel pruned = statistics.pruner(0.5).prune(OnnxModel.read(original)).model();
 * }</pre>
 *
 * <p>The probe file is written next to the model (or to {@link Builder#probeDirectory}), where the
 * executors can read it, and deleted when the job ends.
 */
public final class ActivationStatistics {
  private static final Set<String> NOT_COPIED = Set.of(InferenceProperties.MODEL_PATH_SUFFIX,
      InferenceProperties.MODEL_SHA256_SUFFIX, InferenceProperties.MODEL_PRECISION_SUFFIX,
      InferenceProperties.MODEL_OUTPUTS_SUFFIX, InferenceProperties.MODEL_EMBEDDING_OUTPUT_SUFFIX,
      InferenceProperties.MODEL_NORMALIZE_SUFFIX, InferenceProperties.MODEL_POOL_ON_DEVICE_SUFFIX,
      InferenceProperties.MODEL_PRUNE_RATIO_SUFFIX);

  private final String model;
  private final List<String> inputs;
  private final boolean embed;
  private final String probeDirectory;

  private ActivationStatistics(Builder builder) {
    this.model = builder.model;
    this.inputs = List.copyOf(builder.inputs);
    this.embed = builder.embed;
    this.probeDirectory = builder.probeDirectory;
  }

  /** Statistics of the registered model {@code model}. */
  public static Builder builder(String model) {
    return new Builder(model);
  }

  /** Runs the probe over every row of {@code data} and sums the squared activations. */
  public Statistics collect(Dataset<Row> data) {
    SparkSession spark = data.sparkSession();
    String pathKey = InferenceProperties.MODEL_PREFIX + model + InferenceProperties.MODEL_PATH_SUFFIX;
    String uri = spark.conf().contains(pathKey) ? spark.conf().get(pathKey) : null;
    if (uri == null || uri.isBlank()) {
      throw new IllegalArgumentException("Cannot collect activation statistics of model '" + model
          + "': it is not registered. Register it with SET " + pathKey + "=...");
    }
    Configuration configuration = spark.sparkContext().hadoopConfiguration();
    UnitEnergyProbe probe;
    try {
      probe = UnitEnergyProbe.of(OnnxModel.parse(read(uri, configuration)));
    } catch (IOException e) {
      throw new IllegalArgumentException("Cannot read model '" + model + "' from " + uri + ": " + e.getMessage(), e);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("Cannot collect activation statistics of model '" + model + "' (" + uri
          + "): " + e.getMessage() + ". Structured pruning needs MatMul/Gemm → activation → MatMul/Gemm chains", e);
    }
    Path directory = probeDirectory != null ? new Path(probeDirectory) : qualified(uri, configuration).getParent();
    Path probePath = new Path(directory, ".sparkinfer-energy-probe-" + UUID.randomUUID() + ".onnx");
    try {
      write(probePath, probe.model().toBytes(), configuration);
    } catch (IOException e) {
      throw new IllegalArgumentException("Cannot write the activation probe of model '" + model + "' to " + probePath
          + ": " + e.getMessage() + ". Give a folder the executors can read and the driver can write with"
          + " ActivationStatistics.builder(...).probeDirectory(...)", e);
    }
    try {
      // The last slot counts the rows.
      double[] sums = sum(data, probePath.toString(), probe.totalUnits());
      return new Statistics(model, probe.split(java.util.Arrays.copyOf(sums, probe.totalUnits())),
          (long) sums[probe.totalUnits()]);
    } finally {
      try {
        probePath.getFileSystem(configuration).delete(probePath, false);
      } catch (IOException e) {
        // A leftover probe file is harmless; the statistics are already summed.
      }
    }
  }

  private double[] sum(Dataset<Row> data, String probeUri, int units) {
    SparkSession spark = data.sparkSession();
    String probeName = model + "__energy_probe";
    String prefix = InferenceProperties.MODEL_PREFIX + model;
    Inference call = embed ? Inference.embed(probeName) : Inference.model(probeName);
    // The probe runs as the model is registered (tokenizer, lengths, batching), on its original weights.
    for (Map.Entry<String, String> setting : JavaCollections.asJava(spark.conf().getAll()).entrySet()) {
      String key = setting.getKey();
      if (key.startsWith(prefix + ".") && !NOT_COPIED.contains(key.substring(prefix.length()))) {
        call = call.option(InferenceProperties.MODEL_PREFIX + probeName + key.substring(prefix.length()),
            setting.getValue());
      }
    }
    String probePrefix = InferenceProperties.MODEL_PREFIX + probeName;
    call = call.option(probePrefix + InferenceProperties.MODEL_PATH_SUFFIX, probeUri);
    if (embed) {
      call = call.option(probePrefix + InferenceProperties.MODEL_EMBEDDING_OUTPUT_SUFFIX, UnitEnergyProbe.OUTPUT)
          .option(probePrefix + InferenceProperties.MODEL_NORMALIZE_SUFFIX, "false")
          .option(probePrefix + InferenceProperties.MODEL_POOL_ON_DEVICE_SUFFIX, "false");
    } else {
      call = call.output(UnitEnergyProbe.OUTPUT);
    }
    Column column = call.input(inputs.stream().map(functions::col).toArray(Column[]::new)).toColumn(spark);
    return data.select(column.as("energy")).javaRDD().mapPartitions((Iterator<Row> rows) -> {
      double[] partial = new double[units + 1];
      while (rows.hasNext()) {
        Row row = rows.next();
        if (row.isNullAt(0)) {
          continue;
        }
        List<Object> values = row.getList(0);
        for (int j = 0; j < units; j++) {
          partial[j] += ((Number) values.get(j)).doubleValue();
        }
        partial[units]++;
      }
      return Collections.singletonList(partial).iterator();
    }).treeReduce((left, right) -> {
      for (int j = 0; j < left.length; j++) {
        left[j] += right[j];
      }
      return left;
    });
  }

  private static Path qualified(String uri, Configuration configuration) {
    Path path = new Path(uri);
    try {
      return path.toUri().getScheme() == null ? FileSystem.getLocal(configuration).makeQualified(path)
          : path.getFileSystem(configuration).makeQualified(path);
    } catch (IOException e) {
      throw new IllegalArgumentException("Cannot resolve " + uri + ": " + e.getMessage(), e);
    }
  }

  private static byte[] read(String uri, Configuration configuration) throws IOException {
    Path path = qualified(uri, configuration);
    try (InputStream in = path.getFileSystem(configuration).open(path)) {
      return in.readAllBytes();
    }
  }

  private static void write(Path path, byte[] bytes, Configuration configuration) throws IOException {
    try (OutputStream out = path.getFileSystem(configuration).create(path, false)) {
      out.write(bytes);
    }
  }

  /** The summed squared activations per chain, and the rows they came from. Immutable. */
  public static final class Statistics {
    private final String model;
    private final Map<String, double[]> energy;
    private final long rows;

    Statistics(String model, Map<String, double[]> energy, long rows) {
      this.model = model;
      Map<String, double[]> copy = new java.util.LinkedHashMap<>();
      energy.forEach((chain, sums) -> copy.put(chain, sums.clone()));
      this.energy = Collections.unmodifiableMap(copy);
      this.rows = rows;
    }

    /** Chains (by first weight) in model order. */
    public List<String> chains() {
      return new ArrayList<>(energy.keySet());
    }

    /** Σ a² of each hidden unit of {@code chain}, over all rows (and real tokens); a copy. */
    public double[] sums(String chain) {
      double[] sums = energy.get(chain);
      if (sums == null) {
        throw new IllegalArgumentException("Model '" + model + "' has no prunable chain '" + chain + "': its chains are "
            + energy.keySet());
      }
      return sums.clone();
    }

    public long rows() {
      return rows;
    }

    /** A pruner that removes {@code ratio} of each chain's units, those with the least activation. */
    public StructuredPruner pruner(double ratio) {
      return StructuredPruner.ofRatio(ratio).withUnitEnergy(energy);
    }
  }

  public static final class Builder {
    private final String model;
    private final List<String> inputs = new ArrayList<>();
    private boolean embed;
    private String probeDirectory;

    private Builder(String model) {
      this.model = java.util.Objects.requireNonNull(model, "model");
    }

    /** Columns fed to predict(). */
    public Builder inputs(String... columns) {
      inputs.addAll(List.of(columns));
      return this;
    }

    /** A text column fed to embed(). */
    public Builder embed(String textColumn) {
      inputs.add(textColumn);
      embed = true;
      return this;
    }

    /** A folder (any Hadoop URI) for the probe file; default the model's own folder. */
    public Builder probeDirectory(String uri) {
      probeDirectory = uri;
      return this;
    }

    public ActivationStatistics build() {
      if (inputs.isEmpty()) {
        throw new IllegalArgumentException("Model '" + model + "': give the input columns (inputs(...) or embed(...))");
      }
      return new ActivationStatistics(this);
    }
  }
}
