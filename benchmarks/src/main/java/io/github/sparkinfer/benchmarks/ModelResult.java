package io.github.sparkinfer.benchmarks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One model's measurements and checks. */
final class ModelResult {
  final MiniLm model;
  final List<Measurement> measurements = new ArrayList<>();
  final Map<String, Double> referenceCosine = new LinkedHashMap<>();
  final Map<String, Double> fixedOrderCosine = new LinkedHashMap<>();
  double fixedOrderPadding = Double.NaN;
  double lengthSortedPadding = Double.NaN;
  String embedUnavailable;
  String embedQuery;
  String embedDiagnostics;

  ModelResult(MiniLm model) {
    this.model = model;
  }

  Measurement measurement(String key) {
    return measurements.stream()
        .filter(measurement -> measurement.key().equals(key))
        .findFirst()
        .orElse(null);
  }
}
