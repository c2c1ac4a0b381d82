package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.List;
import java.util.Objects;

/** A model's inputs and outputs, in the model's order. Immutable. */
public final class ModelSignature implements Serializable {
  private static final long serialVersionUID = 1L;

  private final List<TensorSpec> inputs;
  private final List<TensorSpec> outputs;

  public ModelSignature(List<TensorSpec> inputs, List<TensorSpec> outputs) {
    this.inputs = List.copyOf(inputs);
    this.outputs = List.copyOf(outputs);
  }

  public List<TensorSpec> inputs() {
    return inputs;
  }

  public List<TensorSpec> outputs() {
    return outputs;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof ModelSignature
        && ((ModelSignature) other).inputs.equals(inputs)
        && ((ModelSignature) other).outputs.equals(outputs);
  }

  @Override
  public int hashCode() {
    return Objects.hash(inputs, outputs);
  }

  @Override
  public String toString() {
    return "inputs " + inputs + ", outputs " + outputs;
  }
}
