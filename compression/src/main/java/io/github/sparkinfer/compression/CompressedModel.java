package io.github.sparkinfer.compression;

import java.util.Objects;

/** A compressed model and the report of what was rewritten. */
public final class CompressedModel {
  private final OnnxModel model;
  private final CompressionReport report;

  CompressedModel(OnnxModel model, CompressionReport report) {
    this.model = Objects.requireNonNull(model, "model");
    this.report = Objects.requireNonNull(report, "report");
  }

  public OnnxModel model() {
    return model;
  }

  public CompressionReport report() {
    return report;
  }

  @Override
  public String toString() {
    return "CompressedModel{" + model + ", " + report.precision().shortName() + "}";
  }
}
