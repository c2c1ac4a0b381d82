package io.github.sparkinfer.spark.registry;

import java.io.Serializable;
import java.util.List;

/** Every model input with the argument (or struct field) that feeds it. */
public final class InputBinding implements Serializable {
  private static final long serialVersionUID = 1L;

  private final List<InputLayout> inputs;

  InputBinding(List<InputLayout> inputs) {
    this.inputs = List.copyOf(inputs);
  }

  public List<InputLayout> inputs() {
    return inputs;
  }
}
