package io.github.sparkinfer.spark.registry;

import java.io.Serializable;
import java.util.Objects;

/**
 * What a row the model cannot take does: the policy (fail the query or a null result) and whether
 * the call returns each row's reason beside its result (the _with_error functions). Immutable; part
 * of a {@link ModelBinding}.
 */
public final class RowErrorSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  private final RowErrorPolicy onError;
  private final boolean reportErrors;

  RowErrorSettings(RowErrorPolicy onError, boolean reportErrors) {
    this.onError = Objects.requireNonNull(onError, "onError");
    this.reportErrors = reportErrors;
  }

  public RowErrorPolicy onError() {
    return onError;
  }

  /** Whether the result is struct&lt;result, error&gt; with each row's reason. */
  public boolean reportsErrors() {
    return reportErrors;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof RowErrorSettings && onError == ((RowErrorSettings) other).onError
        && reportErrors == ((RowErrorSettings) other).reportErrors;
  }

  @Override
  public int hashCode() {
    return Objects.hash(onError, reportErrors);
  }

  @Override
  public String toString() {
    return "onError " + onError + (reportErrors ? ", reporting errors" : "");
  }
}
