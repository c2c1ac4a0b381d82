package io.github.sparkinfer.distillation;

import io.github.sparkinfer.spark.InferenceProperties;
import io.github.sparkinfer.spark.ModelValidation;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gate between a trained student and serving: the student (registered as a candidate) and its
 * teacher both run over held-out rows through {@link ModelValidation} (a distributed Spark job:
 * cosine, max error and argmax agreement per row, aggregated), and only a student that meets every
 * threshold is promoted: registered under the serving name, which then resolves to the student's
 * file. Under a threshold the gate refuses, the serving name keeps what it had, and the error says
 * by how much.
 *
 * <pre>{@code
 * PromotionGate.builder("teacher", "student_candidate").inputs("features").minArgmaxAgreement(0.95)
 *     .build().promote(heldOut, "scorer");   // SELECT predict('scorer', features) now runs the student
 * }</pre>
 */
public final class PromotionGate {
  private static final Logger LOG = LoggerFactory.getLogger(PromotionGate.class);

  private final String teacher;
  private final String candidate;
  private final List<String> inputs;
  private final boolean embed;
  private final double minArgmaxAgreement;
  private final double minMeanCosine;

  private PromotionGate(Builder builder) {
    this.teacher = builder.teacher;
    this.candidate = builder.candidate;
    this.inputs = List.copyOf(builder.inputs);
    this.embed = builder.embed;
    this.minArgmaxAgreement = builder.minArgmaxAgreement;
    this.minMeanCosine = builder.minMeanCosine;
  }

  /** Compares the registered models {@code teacher} and {@code candidate}. */
  public static Builder builder(String teacher, String candidate) {
    return new Builder(teacher, candidate);
  }

  /** The agreement of the candidate with the teacher on {@code heldOut}, without promoting. */
  public ModelValidation.Report report(Dataset<Row> heldOut) {
    return validation(-1, -1).validate(heldOut);
  }

  /**
   * Checks the candidate on {@code heldOut} and, when every threshold is met, registers it under
   * {@code servingName} in the session (its path, and every other per-model setting of the candidate).
   *
   * @throws PromotionRefusedException when a threshold is not met; nothing is registered then
   */
  public ModelValidation.Report promote(Dataset<Row> heldOut, String servingName) {
    Objects.requireNonNull(servingName, "servingName");
    ModelValidation.Report report;
    try {
      report = validation(minMeanCosine, minArgmaxAgreement).validate(heldOut);
    } catch (ModelValidation.ValidationException e) {
      throw new PromotionRefusedException(String.format(Locale.ROOT, "Student '%s' is not promoted to '%s': on %d"
          + " held-out rows its argmax agreement with teacher '%s' is %.4f (needs %.4f) and its mean cosine %.6f (needs"
          + " %.6f). '%s' keeps what it was registered to. Train a larger student (more factors or epochs, more"
          + " labelled rows), or lower the gate if this agreement is acceptable", candidate, servingName,
          e.report().rows(), teacher, e.report().argmaxAgreement(), minArgmaxAgreement, e.report().meanCosine(),
          minMeanCosine, servingName), e.report(), e);
    }
    SparkSession spark = heldOut.sparkSession();
    String from = InferenceProperties.MODEL_PREFIX + candidate + ".";
    String to = InferenceProperties.MODEL_PREFIX + servingName + ".";
    List<String[]> settings = new ArrayList<>();
    io.github.sparkinfer.spark.JavaCollections.asJava(spark.conf().getAll()).forEach((key, value) -> {
      if (key.startsWith(from)) {
        settings.add(new String[] {to + key.substring(from.length()), value});
      }
    });
    // The serving name becomes the candidate: its old settings go, the candidate's come.
    io.github.sparkinfer.spark.JavaCollections.asJava(spark.conf().getAll()).keySet().stream()
        .filter(key -> key.startsWith(to)).toList().forEach(spark.conf()::unset);
    settings.forEach(setting -> spark.conf().set(setting[0], setting[1]));
    LOG.warn("Promoted student '{}' to '{}' ({})", candidate, servingName, report);
    return report;
  }

  private ModelValidation validation(double meanCosine, double argmaxAgreement) {
    ModelValidation.Builder builder = ModelValidation.builder(teacher, candidate).minMeanCosine(meanCosine)
        .minCosine(-1).minArgmaxAgreement(argmaxAgreement);
    if (embed) {
      builder.embed(inputs.get(0));
    } else {
      builder.inputs(inputs.toArray(new String[0]));
    }
    return builder.build();
  }

  /** The gate refused a student; {@link #report()} has the figures. */
  public static final class PromotionRefusedException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient ModelValidation.Report report;

    PromotionRefusedException(String message, ModelValidation.Report report, Throwable cause) {
      super(message, cause);
      this.report = report;
    }

    public ModelValidation.Report report() {
      return report;
    }
  }

  public static final class Builder {
    private final String teacher;
    private final String candidate;
    private final List<String> inputs = new ArrayList<>();
    private boolean embed;
    private double minArgmaxAgreement = 0.95;
    private double minMeanCosine = -1;

    private Builder(String teacher, String candidate) {
      this.teacher = Objects.requireNonNull(teacher, "teacher");
      this.candidate = Objects.requireNonNull(candidate, "candidate");
    }

    /** Columns fed to predict() of both. */
    public Builder inputs(String... columns) {
      inputs.addAll(List.of(columns));
      return this;
    }

    /** A text column fed to embed() of both. */
    public Builder embed(String textColumn) {
      inputs.add(textColumn);
      embed = true;
      return this;
    }

    /** Share of held-out rows whose largest output is the same dimension in both (default 0.95). */
    public Builder minArgmaxAgreement(double value) {
      minArgmaxAgreement = value;
      return this;
    }

    /** Mean cosine between their output vectors (default -1: not checked). */
    public Builder minMeanCosine(double value) {
      minMeanCosine = value;
      return this;
    }

    public PromotionGate build() {
      if (inputs.isEmpty()) {
        throw new IllegalArgumentException("Give the input columns (inputs(...) or embed(...))");
      }
      return new PromotionGate(this);
    }
  }
}
