package io.github.sparkinfer.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.functions;

/**
 * Checks on a table, with Spark, how close a compressed model stays to its original: both run over
 * every row ({@code predict()} or {@code embed()}), compare_outputs() compares each row, and the
 * aggregates are checked against thresholds; for decoders, {@code generate()}'s greedy texts are
 * compared (equal texts, prefix agreement).
 *
 * <pre>{@code
 * ModelValidation.Report report = ModelValidation.builder("minilm", "minilm_int8").embed("body")
 *     .minMeanCosine(0.99).minArgmaxAgreement(0.0).build().validate(docs);   // throws when a threshold is crossed
 * }</pre>
 */
public final class ModelValidation {
  private final String original;
  private final String compressed;
  private final List<String> inputs;
  private final boolean embed;
  private final boolean generate;
  private final double minExactMatch;
  private final double minPrefixAgreement;
  private final double minMeanCosine;
  private final double minCosine;
  private final double maxAbsError;
  private final double minArgmaxAgreement;

  private ModelValidation(Builder builder) {
    this.original = builder.original;
    this.compressed = builder.compressed;
    this.inputs = List.copyOf(builder.inputs);
    this.embed = builder.embed;
    this.generate = builder.generate;
    this.minExactMatch = builder.minExactMatch;
    this.minPrefixAgreement = builder.minPrefixAgreement;
    this.minMeanCosine = builder.minMeanCosine;
    this.minCosine = builder.minCosine;
    this.maxAbsError = builder.maxAbsError;
    this.minArgmaxAgreement = builder.minArgmaxAgreement;
  }

  /** Compares the registered models {@code original} and {@code compressed}. */
  public static Builder builder(String original, String compressed) {
    return new Builder(original, compressed);
  }

  /** Runs both models over {@code data} and checks the thresholds. */
  public Report validate(Dataset<Row> data) {
    if (generate) {
      return validateGeneration(data);
    }
    Column[] columns = inputs.stream().map(functions::col).toArray(Column[]::new);
    Column left = embed
        ? Inference.embed(original).input(columns).toColumn(data.sparkSession())
        : Inference.model(original).input(columns).toColumn(data.sparkSession());
    Column right = embed
        ? Inference.embed(compressed).input(columns).toColumn(data.sparkSession())
        : Inference.model(compressed).input(columns).toColumn(data.sparkSession());
    Row row = data.select(functions.call_function("compare_outputs", left, right).as("c"))
        .agg(functions.count(functions.col("c")),
            functions.avg("c.cosine"), functions.min("c.cosine"), functions.max("c.max_abs_error"),
            functions.avg(functions.col("c.argmax_equal").cast("double")))
        .first();
    Report report = new Report(original, compressed, row.getLong(0), row.isNullAt(1) ? Double.NaN : row.getDouble(1),
        row.isNullAt(2) ? Double.NaN : row.getDouble(2), row.isNullAt(3) ? Double.NaN : row.getDouble(3),
        row.isNullAt(4) ? Double.NaN : row.getDouble(4));
    List<String> failures = new ArrayList<>();
    if (!(report.meanCosine() >= minMeanCosine)) {
      failures.add(String.format(Locale.ROOT, "mean cosine %.6f < %.6f", report.meanCosine(), minMeanCosine));
    }
    if (!(report.minCosine() >= minCosine)) {
      failures.add(String.format(Locale.ROOT, "lowest cosine %.6f < %.6f", report.minCosine(), minCosine));
    }
    if (!(report.maxAbsError() <= maxAbsError)) {
      failures.add(String.format(Locale.ROOT, "max absolute error %.3g > %.3g", report.maxAbsError(), maxAbsError));
    }
    if (!(report.argmaxAgreement() >= minArgmaxAgreement)) {
      failures.add(String.format(Locale.ROOT, "argmax agreement %.4f < %.4f", report.argmaxAgreement(), minArgmaxAgreement));
    }
    if (!failures.isEmpty()) {
      throw new ValidationException("Model '" + compressed + "' is not close enough to '" + original + "' on "
          + report.rows() + " rows: " + String.join("; ", failures) + ". " + report
          + ". Use a higher precision (" + InferenceProperties.MODEL_PREFIX + compressed
          + InferenceProperties.MODEL_PRECISION_SUFFIX + ") or per-channel int8,"
          + " or relax the threshold if this is acceptable", report);
    }
    return report;
  }

  /**
   * Both decoders' greedy text for every prompt: the share of rows whose texts are equal, and the
   * mean share of each row's longer text that the two have in common from the start (characters of
   * the decoded text, as generate() returns it: 1 when equal, 0 when they differ from the first).
   */
  private Report validateGeneration(Dataset<Row> data) {
    Column prompt = functions.col(inputs.get(0));
    // Greedy, whatever the models' sampling keys say: agreement of sampled texts would measure the seed.
    Column left = Inference.generate(original).input(prompt).generateOption("temperature", "0")
        .toColumn(data.sparkSession()).getField("text");
    Column right = Inference.generate(compressed).input(prompt).generateOption("temperature", "0")
        .toColumn(data.sparkSession()).getField("text");
    // A prompt one decoder fails on (a null text under onError=null) and the other does not is a disagreement;
    // null prompts and prompts both fail on are not counted.
    Row row = data.where(prompt.isNotNull()).select(left.as("a"), right.as("b")).where("a IS NOT NULL OR b IS NOT NULL")
        .map((org.apache.spark.api.java.function.MapFunction<Row, Double>) texts -> texts.isNullAt(0) || texts.isNullAt(1)
            ? 0.0 : prefixAgreement(texts.getString(0), texts.getString(1)), org.apache.spark.sql.Encoders.DOUBLE())
        .agg(functions.count("value"), functions.avg(functions.expr("CAST(value = 1.0 AS DOUBLE)")),
            functions.avg("value"))
        .first();
    Report report = new Report(original, compressed, row.getLong(0), Double.NaN, Double.NaN, Double.NaN, Double.NaN,
        row.isNullAt(1) ? Double.NaN : row.getDouble(1), row.isNullAt(2) ? Double.NaN : row.getDouble(2));
    List<String> failures = new ArrayList<>();
    if (!(report.exactMatch() >= minExactMatch)) {
      failures.add(String.format(Locale.ROOT, "equal texts %.4f < %.4f", report.exactMatch(), minExactMatch));
    }
    if (!(report.prefixAgreement() >= minPrefixAgreement)) {
      failures.add(String.format(Locale.ROOT, "prefix agreement %.4f < %.4f", report.prefixAgreement(),
          minPrefixAgreement));
    }
    if (!failures.isEmpty()) {
      throw new ValidationException("Decoder '" + compressed + "' does not generate close enough to '" + original
          + "' on " + report.rows() + " prompts: " + String.join("; ", failures) + ". " + report
          + ". Use a higher precision (" + InferenceProperties.MODEL_PREFIX + compressed
          + InferenceProperties.MODEL_PRECISION_SUFFIX + ") or relax the threshold if this is acceptable", report);
    }
    return report;
  }

  /** The share of the longer text that both start with: 1 for equal texts (two empty texts included). */
  static double prefixAgreement(String a, String b) {
    int longer = Math.max(a.length(), b.length());
    if (longer == 0) {
      return 1;
    }
    int common = 0;
    while (common < Math.min(a.length(), b.length()) && a.charAt(common) == b.charAt(common)) {
      common++;
    }
    return (double) common / longer;
  }

  /** The comparison's aggregates. Immutable. */
  public static final class Report {
    private final String original;
    private final String compressed;
    private final long rows;
    private final double meanCosine;
    private final double minCosine;
    private final double maxAbsError;
    private final double argmaxAgreement;
    private final double exactMatch;
    private final double prefixAgreement;

    Report(String original, String compressed, long rows, double meanCosine, double minCosine,
        double maxAbsError, double argmaxAgreement) {
      this(original, compressed, rows, meanCosine, minCosine, maxAbsError, argmaxAgreement, Double.NaN, Double.NaN);
    }

    Report(String original, String compressed, long rows, double meanCosine, double minCosine,
        double maxAbsError, double argmaxAgreement, double exactMatch, double prefixAgreement) {
      this.exactMatch = exactMatch;
      this.prefixAgreement = prefixAgreement;
      this.original = original;
      this.compressed = compressed;
      this.rows = rows;
      this.meanCosine = meanCosine;
      this.minCosine = minCosine;
      this.maxAbsError = maxAbsError;
      this.argmaxAgreement = argmaxAgreement;
    }

    public long rows() {
      return rows;
    }

    public double meanCosine() {
      return meanCosine;
    }

    public double minCosine() {
      return minCosine;
    }

    public double maxAbsError() {
      return maxAbsError;
    }

    public double argmaxAgreement() {
      return argmaxAgreement;
    }

    /** generate(): the share of prompts whose greedy texts are equal (NaN for predict and embed). */
    public double exactMatch() {
      return exactMatch;
    }

    /** generate(): the mean share of each prompt's longer text that both texts start with. */
    public double prefixAgreement() {
      return prefixAgreement;
    }

    @Override
    public String toString() {
      if (!Double.isNaN(prefixAgreement)) {
        return String.format(Locale.ROOT, "%s vs %s over %d prompts: equal texts %.4f, prefix agreement %.4f",
            compressed, original, rows, exactMatch, prefixAgreement);
      }
      return String.format(Locale.ROOT, "%s vs %s over %d rows: mean cosine %.6f, lowest cosine %.6f,"
          + " max absolute error %.3g, argmax agreement %.4f", compressed, original, rows, meanCosine, minCosine,
          maxAbsError, argmaxAgreement);
    }
  }

  /** A threshold was crossed; {@link #report()} has the figures. */
  public static final class ValidationException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient Report report;

    ValidationException(String message, Report report) {
      super(message);
      this.report = report;
    }

    public Report report() {
      return report;
    }
  }

  public static final class Builder {
    private final String original;
    private final String compressed;
    private final List<String> inputs = new ArrayList<>();
    private boolean embed;
    private double minMeanCosine = 0.99;
    private double minCosine = 0;
    private double maxAbsError = Double.POSITIVE_INFINITY;
    private double minArgmaxAgreement = 0;
    private boolean generate;
    private double minExactMatch = 0;
    private double minPrefixAgreement = 0.9;

    private Builder(String original, String compressed) {
      this.original = original;
      this.compressed = compressed;
    }

    /** Columns fed to predict() of both models. */
    public Builder inputs(String... columns) {
      inputs.addAll(List.of(columns));
      return this;
    }

    /** A text column fed to embed() of both models. */
    public Builder embed(String textColumn) {
      inputs.add(textColumn);
      embed = true;
      return this;
    }

    /**
     * A prompt column fed to generate() of both decoders (greedy): checks the share of equal texts
     * ({@link #minExactMatch}, default 0) and the mean prefix agreement ({@link #minPrefixAgreement},
     * default 0.9).
     */
    public Builder generate(String promptColumn) {
      inputs.add(promptColumn);
      generate = true;
      return this;
    }

    public Builder minExactMatch(double value) {
      minExactMatch = share("minExactMatch", value);
      return this;
    }

    public Builder minPrefixAgreement(double value) {
      minPrefixAgreement = share("minPrefixAgreement", value);
      return this;
    }

    private static double share(String name, double value) {
      if (!(value >= 0 && value <= 1)) {
        throw new IllegalArgumentException("Invalid " + name + " " + value + ": a share of prompts, from 0 to 1");
      }
      return value;
    }

    public Builder minMeanCosine(double value) {
      minMeanCosine = value;
      return this;
    }

    public Builder minCosine(double value) {
      minCosine = value;
      return this;
    }

    public Builder maxAbsError(double value) {
      maxAbsError = value;
      return this;
    }

    public Builder minArgmaxAgreement(double value) {
      minArgmaxAgreement = value;
      return this;
    }

    public ModelValidation build() {
      if (inputs.isEmpty()) {
        throw new IllegalArgumentException("Name the input columns with inputs(...), embed(...) or generate(...) to validate '"
            + compressed + "' against '" + original + "'");
      }
      return new ModelValidation(this);
    }
  }
}
