package io.github.sparkinfer.spark;

import java.util.regex.Pattern;

/** Validation shared by the Java and SQL registration paths. */
final class ModelNames {
  // Names become part of configuration keys, so keep them to one key segment.
  private static final Pattern VALID_NAME = Pattern.compile("[A-Za-z0-9_\\-]+");

  private ModelNames() {}

  static String validate(String name) {
    if (name == null || !VALID_NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "Invalid model name '" + name + "': use letters, digits, '_' and '-' only");
    }
    return name;
  }

  static int positive(int value, String what, String modelName) {
    if (value < 1) {
      throw new IllegalArgumentException(
          "Invalid " + what + " " + value + " for model '" + modelName + "': must be at least 1");
    }
    return value;
  }
}
