package io.github.sparkinfer.spark.plan;

import java.io.Serializable;
import java.util.List;

/** Every model input with the argument (or struct field) that feeds it. */
final class InputBinding implements Serializable {
  private static final long serialVersionUID = 1L;

  private final List<InputLayout> inputs;

  InputBinding(List<InputLayout> inputs) {
    this.inputs = List.copyOf(inputs);
  }

  List<InputLayout> inputs() {
    return inputs;
  }
}
