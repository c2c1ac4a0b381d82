package io.github.sparkinfer.distillation;

import java.util.Locale;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.functions;

/**
 * What the teacher hands the student to imitate, per row: its raw outputs (logits, or embeddings
 * from {@code embed()}), or its probabilities softened at a temperature T: softmax(logits / T), the
 * soft targets of Hinton et al.; T above 1 spreads the probability over the other classes, which
 * carries the teacher's sense of which classes are alike. Immutable.
 */
public final class SoftTarget {
  private final double temperature;

  private SoftTarget(double temperature) {
    this.temperature = temperature;
  }

  /** The teacher's outputs as they are (logits, scores, or embeddings). */
  public static SoftTarget outputs() {
    return new SoftTarget(Double.NaN);
  }

  /** softmax(outputs / temperature) per row; the temperature must be positive. */
  public static SoftTarget probabilities(double temperature) {
    if (!(temperature > 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("Invalid temperature " + temperature + ": give a positive number (1 is the"
          + " plain softmax, 2 to 5 soften it)");
    }
    return new SoftTarget(temperature);
  }

  /** Whether this target softens the outputs into probabilities. */
  public boolean isProbabilities() {
    return !Double.isNaN(temperature);
  }

  /** The temperature of {@link #probabilities}; NaN for {@link #outputs}. */
  public double temperature() {
    return temperature;
  }

  /**
   * The target of a teacher output column (array&lt;float&gt;): computed by Spark's own expressions,
   * the largest value subtracted before exp so no row overflows.
   */
  Column of(Column outputs) {
    if (!isProbabilities()) {
      return outputs;
    }
    // aggregate's finishing lambda receives the largest value and the sum once per row; referenced
    // inside transform's lambda instead, they would be computed again for every element.
    Column scaled = functions.transform(outputs, x -> x.cast("double").divide(temperature));
    Column exponentials = functions.aggregate(scaled, functions.lit(Double.NEGATIVE_INFINITY),
        (left, right) -> functions.greatest(left, right), largest -> functions.transform(scaled, x -> functions.exp(x.minus(largest))));
    return functions.aggregate(exponentials, functions.lit(0.0), Column::plus,
        sum -> functions.transform(exponentials, x -> x.divide(sum).cast("float")));
  }

  @Override
  public String toString() {
    return isProbabilities() ? String.format(Locale.ROOT, "probabilities at temperature %s", temperature)
        : "the teacher's outputs";
  }
}
