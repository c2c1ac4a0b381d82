package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.sparkinfer.device.SchedulingProperties;
import io.github.sparkinfer.partitioning.PartitioningProperties;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import io.github.sparkinfer.spark.config.Setting;
import io.github.sparkinfer.spark.config.SparkinferSettings;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * docs/configuration.md cannot go stale: its table documents exactly the keys the modules' constants
 * classes define, one key per row. Keys are built from the constants by the rules the code reads
 * them with: a full key as it is, a provider's option prefix with {@code <ortKey>}, a per-model
 * option after {@code spark.sparkinfer.model.<name>}, a stage option after {@code
 * spark.sparkinfer.stage.} (and after {@code spark.sparkinfer.model.<name>.stage.}, one row).
 */
class TestConfigurationPage {
  private static final Path PAGE = Path.of("..", "docs", "configuration.md");

  @Test
  void documentsEveryKeyAndNoOther() throws Exception {
    assertThat(documentedKeys()).containsExactlyInAnyOrderElementsOf(definedKeys());
  }

  /** The settings layer declares exactly the keys the constants define, and the page shows each one's scope. */
  @Test
  void declaresEveryKeyOnceWithTheScopeThePageShows() throws Exception {
    Map<String, String> declared = new TreeMap<>();
    for (Setting setting : SparkinferSettings.all()) {
      assertThat(declared.put(setting.key(), setting.scopeLabel())).as("declared twice: %s", setting.key()).isNull();
    }
    assertThat(declared.keySet()).containsExactlyInAnyOrderElementsOf(definedKeys());
    assertThat(documentedScopes()).isEqualTo(declared);
  }

  /** Each row's key and its scope column. */
  static Map<String, String> documentedScopes() throws Exception {
    Map<String, String> scopes = new TreeMap<>();
    Pattern row = Pattern.compile("^\\| `(spark\\.sparkinfer\\.[^`]+)` \\| ([^|]+) \\|");
    for (String line : Files.readAllLines(PAGE, StandardCharsets.UTF_8)) {
      Matcher matcher = row.matcher(line);
      if (matcher.find()) {
        scopes.put(matcher.group(1), matcher.group(2).trim());
      }
    }
    return scopes;
  }

  static Set<String> definedKeys() throws IllegalAccessException {
    Set<String> keys = new TreeSet<>();
    for (Class<?> constants : new Class<?>[] {SchedulingProperties.class, InferenceProperties.class}) {
      for (Field field : constants.getFields()) {
        if (!isKeyConstant(field)) {
          continue;
        }
        String value = (String) field.get(null);
        if (field.getName().startsWith("MODEL_") && field.getName().endsWith("_SUFFIX")) {
          keys.add(InferenceProperties.MODEL_PREFIX + "<name>" + value);
        } else if (value.endsWith(".option.")) {
          keys.add(value + "<ortKey>");
        } else if (value.startsWith(SchedulingProperties.PREFIX) && !value.endsWith(".")) {
          keys.add(value);
        }
      }
    }
    String stage = PartitioningProperties.STAGE_PREFIX;
    keys.add(stage + PartitioningProperties.TASK_CPUS);
    keys.add(stage + PartitioningProperties.TASK_RESOURCE_PREFIX + "<resource>" + PartitioningProperties.AMOUNT_SUFFIX);
    for (String option : new String[] {PartitioningProperties.EXECUTOR_CORES, PartitioningProperties.EXECUTOR_MEMORY,
        PartitioningProperties.EXECUTOR_MEMORY_OVERHEAD}) {
      keys.add(stage + option);
    }
    for (String suffix : new String[] {PartitioningProperties.AMOUNT_SUFFIX, PartitioningProperties.DISCOVERY_SCRIPT_SUFFIX,
        PartitioningProperties.VENDOR_SUFFIX}) {
      keys.add(stage + PartitioningProperties.EXECUTOR_RESOURCE_PREFIX + "<resource>" + suffix);
    }
    keys.add(PartitioningProperties.MODEL_PREFIX + "<name>" + PartitioningProperties.MODEL_STAGE_INFIX + "<option>");
    for (io.github.sparkinfer.spark.generate.GenerateOption option : io.github.sparkinfer.spark.generate.GenerateOption.values()) {
      keys.add(io.github.sparkinfer.spark.generate.GenerateOption.SESSION_PREFIX + option.key());
    }
    keys.add(InferenceProperties.MODEL_PREFIX + "<name>" + io.github.sparkinfer.spark.generate.GenerateOption.MODEL_INFIX
        + "<option>");
    return keys;
  }

  /** A public static String that names a key or a key's part, not a default value. */
  private static boolean isKeyConstant(Field field) {
    int modifiers = field.getModifiers();
    return Modifier.isStatic(modifiers) && field.getType() == String.class && !field.getName().endsWith("_DEFAULT")
        && !field.getName().equals("PREFIX") && !field.getName().equals("MODEL_PREFIX");
  }

  /** The first column of each table row: one key in backticks. */
  static Set<String> documentedKeys() throws Exception {
    Set<String> keys = new TreeSet<>();
    Pattern row = Pattern.compile("^\\| `(spark\\.sparkinfer\\.[^`]+)` \\|");
    for (String line : Files.readAllLines(PAGE, StandardCharsets.UTF_8)) {
      Matcher matcher = row.matcher(line);
      if (matcher.find()) {
        assertThat(keys.add(matcher.group(1))).as("key documented twice: %s", matcher.group(1)).isTrue();
      } else if (line.startsWith("| `spark.")) {
        throw new AssertionError("A row of " + PAGE + " that is not one key in backticks: " + line);
      }
    }
    assertThat(keys).as("keys in %s", PAGE).isNotEmpty();
    return keys;
  }
}
