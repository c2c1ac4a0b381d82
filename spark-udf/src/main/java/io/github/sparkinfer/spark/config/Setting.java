package io.github.sparkinfer.spark.config;

import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Function;
import java.util.regex.Pattern;
import org.apache.spark.network.util.JavaUtils;

/**
 * One key as sparkinfer declares it: the key (with placeholders such as {@code <name>} for the
 * parts a user chooses), its value type, default, scope, check and documentation line. Declared once
 * in {@link SparkinferSettings}; docs/configuration.md is tested against these declarations.
 * Immutable; build with {@link #builder(String)}.
 */
public final class Setting {
  /** What a value must look like. */
  public enum Type {
    STRING("text"),
    INT("whole number"),
    DOUBLE("number"),
    BOOLEAN("true or false"),
    SIZE("size such as 64m or 8g"),
    DURATION("duration such as 30s or 10min"),
    CHOICE("one of the listed values"),
    URI("URI"),
    URI_LIST("comma-separated URIs"),
    PATH("local path");

    private final String description;

    Type(String description) {
      this.description = description;
    }

    public String description() {
      return description;
    }
  }

  private static final Pattern PLACEHOLDER = Pattern.compile("<[A-Za-z]+>");

  private final String key;
  private final Pattern pattern;
  private final Type type;
  private final SettingScope scope;
  private final Function<String, SettingScope> scopeOfKey;
  private final String scopeLabel;
  private final List<String> choices;
  private final String defaultText;
  private final String doc;

  private Setting(Builder builder) {
    this.key = builder.key;
    this.pattern = toPattern(builder.key);
    this.type = Objects.requireNonNull(builder.type, "type of " + builder.key);
    this.scope = Objects.requireNonNull(builder.scope, "scope of " + builder.key);
    this.scopeOfKey = builder.scopeOfKey;
    this.scopeLabel = builder.scopeLabel == null ? scope.label() : builder.scopeLabel;
    this.choices = List.copyOf(builder.choices);
    this.defaultText = Objects.requireNonNull(builder.defaultText, "default of " + builder.key);
    this.doc = Objects.requireNonNull(builder.doc, "doc of " + builder.key);
  }

  public static Builder builder(String key) {
    return new Builder(key);
  }

  /** The key as documented, placeholders included: {@code spark.sparkinfer.model.<name>.path}. */
  public String key() {
    return key;
  }

  public Type type() {
    return type;
  }

  /** The scope of the row; for a few keys it depends on the concrete key ({@link #scopeOf}). */
  public SettingScope scope() {
    return scope;
  }

  /** What docs/configuration.md's scope column says. */
  public String scopeLabel() {
    return scopeLabel;
  }

  public String defaultText() {
    return defaultText;
  }

  public String doc() {
    return doc;
  }

  /** Whether a concrete key ({@code spark.sparkinfer.model.mlp.path}) is this setting. */
  public boolean matches(String concreteKey) {
    return pattern.matcher(concreteKey).matches();
  }

  /** The scope of a concrete key of this setting (a provider option's scope depends on the option). */
  public SettingScope scopeOf(String concreteKey) {
    return scopeOfKey == null ? scope : scopeOfKey.apply(concreteKey);
  }

  /**
   * Checks a value against the type (and the choices), as the SET guard does for application keys.
   * Module-specific checks (ranges, combinations) stay where the value is read.
   *
   * @throws IllegalArgumentException naming the key, the value and what it must be
   */
  public void checkValue(String concreteKey, String value) {
    String trimmed = value == null ? "" : value.trim();
    String why = null;
    try {
      switch (type) {
        case INT:
          Integer.parseInt(trimmed);
          break;
        case DOUBLE:
          Double.parseDouble(trimmed);
          break;
        case BOOLEAN:
          if (!trimmed.equalsIgnoreCase("true") && !trimmed.equalsIgnoreCase("false")) {
            why = "not true or false";
          }
          break;
        case SIZE:
          JavaUtils.byteStringAsBytes(trimmed);
          break;
        case DURATION:
          JavaUtils.timeStringAsMs(trimmed);
          break;
        case CHOICE:
          if (choices.stream().noneMatch(choice -> choice.equalsIgnoreCase(trimmed))) {
            why = "expected one of " + choices;
          }
          break;
        default:
          break;
      }
    } catch (RuntimeException e) {
      why = "not a " + type.description();
    }
    if (why != null) {
      throw new IllegalArgumentException("Invalid value '" + value + "' for " + concreteKey + ": " + why);
    }
  }

  @Override
  public String toString() {
    return key + " (" + type.name().toLowerCase(Locale.ROOT) + ", " + scopeLabel + ", default " + defaultText + ")";
  }

  private static Pattern toPattern(String key) {
    StringBuilder regex = new StringBuilder();
    java.util.regex.Matcher matcher = PLACEHOLDER.matcher(key);
    int last = 0;
    while (matcher.find()) {
      regex.append(Pattern.quote(key.substring(last, matcher.start())));
      // A model name is one segment; an ONNX Runtime option or a resource name too; a stage option may have dots.
      regex.append(matcher.group().equals("<option>") ? ".+" : "[^.]+");
      last = matcher.end();
    }
    regex.append(Pattern.quote(key.substring(last)));
    return Pattern.compile(regex.toString());
  }

  /** Builds a {@link Setting}, in the style of Spark's and Delta's {@code buildConf(...)}. */
  public static final class Builder {
    private final String key;
    private Type type = Type.STRING;
    private SettingScope scope;
    private Function<String, SettingScope> scopeOfKey;
    private String scopeLabel;
    private List<String> choices = List.of();
    private String defaultText;
    private String doc;

    private Builder(String key) {
      if (!key.startsWith("spark.sparkinfer.")) {
        throw new IllegalArgumentException("Every sparkinfer key starts with spark.sparkinfer.: " + key);
      }
      this.key = key;
    }

    public Builder type(Type type) {
      this.type = type;
      return this;
    }

    /** A value among {@code values} (compared ignoring case). */
    public Builder choices(String... values) {
      this.type = Type.CHOICE;
      this.choices = List.of(values);
      return this;
    }

    public Builder scope(SettingScope scope) {
      this.scope = scope;
      return this;
    }

    /** For a row whose concrete keys differ in scope; {@code label} is what the docs show. */
    public Builder scopeByKey(Function<String, SettingScope> scopeOfKey, String label) {
      this.scopeOfKey = scopeOfKey;
      this.scopeLabel = label;
      return this;
    }

    public Builder defaultText(String text) {
      this.defaultText = text;
      return this;
    }

    public Builder doc(String doc) {
      this.doc = doc;
      return this;
    }

    public Setting build() {
      return new Setting(this);
    }
  }
}
