package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.TensorElementType;
import io.github.sparkinfer.device.TensorSpec;

/** What Spark columns can feed a model input, in words for model_info(). */
public final class InputDescriptions {
  private InputDescriptions() {}

  public static String accepted(TensorSpec input) {
    String element = input.elementType() == TensorElementType.FLOAT
            || input.elementType() == TensorElementType.DOUBLE
        ? "numeric"
        : "integer";
    if (input.rank() == 1) {
      return element;
    }
    int values = InputLayout.fixedValuesPerRow(input);
    if (input.rank() == 2 && (input.dimension(1) == 1)) {
      return element + " or array<" + element + "> of 1";
    }
    String arrays = "array<" + element + ">" + (values > 0 ? " of " + values : "");
    return input.elementType() == TensorElementType.FLOAT || input.elementType() == TensorElementType.DOUBLE
        ? arrays + " or vector"
        : arrays;
  }
}
