package io.github.sparkinfer.spark.generate;

import java.io.Serializable;

/**
 * How a row's prompt becomes the model's input text: a template with a {@code {prompt}} slot (and,
 * for instruction models, a {@code {system}} slot filled with the system prompt), or the prompt as
 * it is. Checked when built: a template without {@code {prompt}} would give every row the same text.
 */
public final class PromptTemplate implements Serializable {
  private static final long serialVersionUID = 1L;

  static final String PROMPT_SLOT = "{prompt}";
  static final String SYSTEM_SLOT = "{system}";

  private final String template;
  private final String system;

  private PromptTemplate(String template, String system) {
    this.template = template;
    this.system = system;
  }

  /** The prompt as it is. */
  public static PromptTemplate none() {
    return new PromptTemplate(PROMPT_SLOT, "");
  }

  /**
   * @param template text with one {@code {prompt}} slot, and a {@code {system}} slot where the system
   *     prompt goes
   * @param system the system prompt, or null for none
   * @throws IllegalArgumentException naming the template when it has no {@code {prompt}} slot, or a
   *     system prompt but no {@code {system}} slot
   */
  public static PromptTemplate of(String template, String system) {
    if (template == null || !template.contains(PROMPT_SLOT)) {
      throw new IllegalArgumentException("Invalid generate() prompt template '" + template + "': it has no "
          + PROMPT_SLOT + " slot, so every row would get the same text. Put " + PROMPT_SLOT + " where the row's prompt"
          + " goes, for example '<|user|>\\n{prompt}<|assistant|>\\n'");
    }
    if (system != null && !system.isEmpty() && !template.contains(SYSTEM_SLOT)) {
      throw new IllegalArgumentException("Invalid generate() prompt template '" + template + "': a system prompt is"
          + " set but the template has no " + SYSTEM_SLOT + " slot for it. Add " + SYSTEM_SLOT + " to the template, or"
          + " leave the system prompt unset");
    }
    return new PromptTemplate(template, system == null ? "" : system);
  }

  /** The model's input text for {@code prompt}. Slots are filled once: a prompt's own braces stay text. */
  public String apply(String prompt) {
    int at = template.indexOf(PROMPT_SLOT);
    String before = template.substring(0, at).replace(SYSTEM_SLOT, system);
    String after = template.substring(at + PROMPT_SLOT.length()).replace(SYSTEM_SLOT, system);
    return before + prompt + after;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof PromptTemplate && template.equals(((PromptTemplate) other).template)
        && system.equals(((PromptTemplate) other).system);
  }

  @Override
  public int hashCode() {
    return template.hashCode() * 31 + system.hashCode();
  }
}
