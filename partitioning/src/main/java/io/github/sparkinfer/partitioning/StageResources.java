package io.github.sparkinfer.partitioning;

import static io.github.sparkinfer.partitioning.PartitioningProperties.AMOUNT_SUFFIX;
import static io.github.sparkinfer.partitioning.PartitioningProperties.DISCOVERY_SCRIPT_SUFFIX;
import static io.github.sparkinfer.partitioning.PartitioningProperties.EXECUTOR_CORES;
import static io.github.sparkinfer.partitioning.PartitioningProperties.EXECUTOR_MEMORY;
import static io.github.sparkinfer.partitioning.PartitioningProperties.EXECUTOR_MEMORY_OVERHEAD;
import static io.github.sparkinfer.partitioning.PartitioningProperties.EXECUTOR_RESOURCE_PREFIX;
import static io.github.sparkinfer.partitioning.PartitioningProperties.MODEL_STAGE_INFIX;
import static io.github.sparkinfer.partitioning.PartitioningProperties.STAGE_PREFIX;
import static io.github.sparkinfer.partitioning.PartitioningProperties.TASK_CPUS;
import static io.github.sparkinfer.partitioning.PartitioningProperties.TASK_RESOURCE_PREFIX;
import static io.github.sparkinfer.partitioning.PartitioningProperties.VENDOR_SUFFIX;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.spark.network.util.JavaUtils;
import org.apache.spark.resource.ExecutorResourceRequests;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.ResourceProfileBuilder;
import org.apache.spark.resource.TaskResourceRequests;

/**
 * What the inference stage asks Spark for: per-task CPUs and resources (a GPU, a quarter of one,
 * an NPU) and, optionally, executors of its own. Becomes the stage's Spark {@link ResourceProfile}
 * ({@link StageResourceProfiles}): only task requests make a task resource profile that runs on
 * the application's executors; executor requests make a full profile, for which Spark starts new
 * executors (dynamic allocation only).
 *
 * <p>Immutable and serializable; {@link #NONE} asks for nothing (the stage keeps the default
 * profile). Build with {@link #builder()} or read from configuration with {@link
 * #fromConfiguration}.
 */
public final class StageResources implements Serializable {
  private static final long serialVersionUID = 1L;

  /** No requests: the stage runs with the application's default resource profile. */
  public static final StageResources NONE = builder().build();

  private final int taskCpus;
  private final SortedMap<String, Double> taskResources;
  private final int executorCores;
  private final String executorMemory;
  private final String executorMemoryOverhead;
  private final SortedMap<String, ExecutorResource> executorResources;

  private StageResources(Builder builder) {
    this.taskCpus = builder.taskCpus;
    this.taskResources = new TreeMap<>(builder.taskResources);
    this.executorCores = builder.executorCores;
    this.executorMemory = builder.executorMemory;
    this.executorMemoryOverhead = builder.executorMemoryOverhead;
    this.executorResources = new TreeMap<>(builder.executorResources);
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * Reads the stage keys of {@code model} from a session's configuration: {@code
   * spark.sparkinfer.stage.<option>}, overridden option by option by {@code
   * spark.sparkinfer.model.<model>.stage.<option>}. Throws {@link IllegalArgumentException} naming
   * the key, its value, the model and the fix.
   */
  public static StageResources fromConfiguration(Map<String, String> configuration, String model) {
    String modelPrefix = modelStagePrefix(model);
    // option -> (key, value); per-model keys are applied last so that they win.
    Map<String, String[]> options = new TreeMap<>();
    for (String prefix : List.of(STAGE_PREFIX, modelPrefix)) {
      configuration.forEach((key, value) -> {
        if (key.startsWith(prefix) && value != null) {
          options.put(key.substring(prefix.length()), new String[] {key, value.trim()});
        }
      });
    }
    Builder builder = builder();
    options.forEach((option, keyAndValue) -> builder.option(model, option, keyAndValue[0], keyAndValue[1]));
    return builder.build();
  }

  /** {@code spark.sparkinfer.model.<model>.stage.}: where one model's stage keys start. */
  private static String modelStagePrefix(String model) {
    return PartitioningProperties.MODEL_PREFIX + model + MODEL_STAGE_INFIX;
  }

  /** Whether nothing is requested: the stage keeps the default profile. */
  public boolean isEmpty() {
    return taskCpus == 0 && taskResources.isEmpty() && !requestsExecutors();
  }

  /** Whether the stage asks for executors of its own, which only dynamic allocation provides. */
  public boolean requestsExecutors() {
    return executorCores != 0 || executorMemory != null || executorMemoryOverhead != null
        || !executorResources.isEmpty();
  }

  /** CPUs per task; 0 when not set (spark.task.cpus applies). */
  public int taskCpus() {
    return taskCpus;
  }

  /** Resource name to amount per task. */
  public Map<String, Double> taskResources() {
    return java.util.Collections.unmodifiableSortedMap(taskResources);
  }

  /**
   * This request as a Spark profile: a task resource profile when only tasks ask for something,
   * otherwise a full profile with executor requests. A new profile (a new id) on each call; {@link
   * StageResourceProfiles} keeps one per application.
   */
  public ResourceProfile toResourceProfile() {
    if (isEmpty()) {
      throw new IllegalStateException("No stage resources are requested: the stage keeps the default profile");
    }
    ResourceProfileBuilder builder = new ResourceProfileBuilder();
    TaskResourceRequests tasks = new TaskResourceRequests();
    if (taskCpus > 0) {
      tasks.cpus(taskCpus);
    }
    taskResources.forEach(tasks::resource);
    builder.require(tasks);
    if (requestsExecutors()) {
      ExecutorResourceRequests executors = new ExecutorResourceRequests();
      if (executorCores > 0) {
        executors.cores(executorCores);
      }
      if (executorMemory != null) {
        executors.memory(executorMemory);
      }
      if (executorMemoryOverhead != null) {
        executors.memoryOverhead(executorMemoryOverhead);
      }
      executorResources.forEach((name, resource) ->
          executors.resource(name, resource.amount, resource.discoveryScript, resource.vendor));
      builder.require(executors);
    }
    return builder.build();
  }

  /** For plans and messages: {@code task cpus=1, gpu=1; executor cores=4, memory=8g, gpu=1}. */
  @Override
  public String toString() {
    if (isEmpty()) {
      return "default profile";
    }
    List<String> task = new ArrayList<>();
    if (taskCpus > 0) {
      task.add("cpus=" + taskCpus);
    }
    taskResources.forEach((name, amount) -> task.add(name + "=" + formatAmount(amount)));
    String text = task.isEmpty() ? "" : "task " + String.join(", ", task);
    if (requestsExecutors()) {
      List<String> executor = new ArrayList<>();
      if (executorCores > 0) {
        executor.add("cores=" + executorCores);
      }
      if (executorMemory != null) {
        executor.add("memory=" + executorMemory);
      }
      if (executorMemoryOverhead != null) {
        executor.add("memoryOverhead=" + executorMemoryOverhead);
      }
      executorResources.forEach((name, resource) -> executor.add(name + "=" + resource.amount));
      text += (text.isEmpty() ? "" : "; ") + "executor " + String.join(", ", executor);
    }
    return text;
  }

  private static String formatAmount(double amount) {
    return amount == Math.rint(amount) ? Long.toString((long) amount) : Double.toString(amount);
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof StageResources)) {
      return false;
    }
    StageResources that = (StageResources) other;
    return taskCpus == that.taskCpus
        && taskResources.equals(that.taskResources)
        && executorCores == that.executorCores
        && Objects.equals(executorMemory, that.executorMemory)
        && Objects.equals(executorMemoryOverhead, that.executorMemoryOverhead)
        && executorResources.equals(that.executorResources);
  }

  @Override
  public int hashCode() {
    return Objects.hash(taskCpus, taskResources, executorCores, executorMemory, executorMemoryOverhead,
        executorResources);
  }

  /** An executor resource request: amount, discovery script and vendor ("" when not set). */
  private static final class ExecutorResource implements Serializable {
    private static final long serialVersionUID = 1L;
    final long amount;
    final String discoveryScript;
    final String vendor;

    ExecutorResource(long amount, String discoveryScript, String vendor) {
      this.amount = amount;
      this.discoveryScript = discoveryScript;
      this.vendor = vendor;
    }

    @Override
    public boolean equals(Object other) {
      return other instanceof ExecutorResource
          && amount == ((ExecutorResource) other).amount
          && discoveryScript.equals(((ExecutorResource) other).discoveryScript)
          && vendor.equals(((ExecutorResource) other).vendor);
    }

    @Override
    public int hashCode() {
      return Objects.hash(amount, discoveryScript, vendor);
    }
  }

  public static final class Builder {
    private int taskCpus;
    private final Map<String, Double> taskResources = new TreeMap<>();
    private int executorCores;
    private String executorMemory;
    private String executorMemoryOverhead;
    private final Map<String, ExecutorResource> executorResources = new TreeMap<>();
    // Scripts and vendors may come before their amount; they are checked in build().
    private final Map<String, String> discoveryScripts = new TreeMap<>();
    private final Map<String, String> vendors = new TreeMap<>();

    private Builder() {}

    /** CPUs per inference task. */
    public Builder taskCpus(int cpus) {
      if (cpus < 1) {
        throw new IllegalArgumentException("Invalid task CPUs " + cpus + " for the inference stage: must be at least 1");
      }
      this.taskCpus = cpus;
      return this;
    }

    /**
     * Amount of {@code resource} per inference task: a fraction up to 1 (that many tasks share one
     * address) or a whole number; 0 removes the request.
     */
    public Builder taskResource(String resource, double amount) {
      checkResourceName(resource);
      if (!(amount >= 0) || (amount > 1 && amount != Math.rint(amount))) {
        throw new IllegalArgumentException("Invalid amount " + amount + " of resource '" + resource
            + "' per inference task: use a fraction up to 1 (e.g. 0.25: four tasks share one address)"
            + " or a whole number");
      }
      if (amount == 0) {
        taskResources.remove(resource);
      } else {
        taskResources.put(resource, amount);
      }
      return this;
    }

    /** Cores of each executor started for the stage (dynamic allocation). */
    public Builder executorCores(int cores) {
      if (cores < 1) {
        throw new IllegalArgumentException("Invalid executor cores " + cores + " for the inference stage: must be at least 1");
      }
      this.executorCores = cores;
      return this;
    }

    /** Heap of each executor started for the stage, as spark.executor.memory (e.g. 8g). */
    public Builder executorMemory(String amount) {
      this.executorMemory = checkMemory(amount, "executor memory");
      return this;
    }

    /** Memory overhead of each executor started for the stage, as spark.executor.memoryOverhead. */
    public Builder executorMemoryOverhead(String amount) {
      this.executorMemoryOverhead = checkMemory(amount, "executor memory overhead");
      return this;
    }

    /** Amount of {@code resource} on each executor started for the stage. */
    public Builder executorResource(String resource, long amount) {
      checkResourceName(resource);
      if (amount < 1) {
        throw new IllegalArgumentException("Invalid amount " + amount + " of resource '" + resource
            + "' per executor: must be a whole number of at least 1");
      }
      executorResources.put(resource, new ExecutorResource(amount, "", ""));
      return this;
    }

    /** The script that finds {@code resource}'s addresses on the stage's new executors. */
    public Builder executorDiscoveryScript(String resource, String script) {
      checkResourceName(resource);
      discoveryScripts.put(resource, script);
      return this;
    }

    /** The vendor of {@code resource} on the stage's new executors (Kubernetes). */
    public Builder executorVendor(String resource, String vendor) {
      checkResourceName(resource);
      vendors.put(resource, vendor);
      return this;
    }

    public StageResources build() {
      for (String resource : union(discoveryScripts.keySet(), vendors.keySet())) {
        ExecutorResource request = executorResources.get(resource);
        if (request == null) {
          throw new IllegalArgumentException("A discovery script or vendor is set for executor resource '"
              + resource + "' of the inference stage, but no amount: set its amount too");
        }
        executorResources.put(resource, new ExecutorResource(request.amount,
            discoveryScripts.getOrDefault(resource, ""), vendors.getOrDefault(resource, "")));
      }
      return new StageResources(this);
    }

    private static java.util.Set<String> union(java.util.Set<String> first, java.util.Set<String> second) {
      java.util.Set<String> all = new java.util.TreeSet<>(first);
      all.addAll(second);
      return all;
    }

    /** Applies one {@code spark.sparkinfer[.model.<name>].stage.<option>} key. */
    private void option(String model, String option, String key, String value) {
      try {
        if (option.equals(TASK_CPUS)) {
          taskCpus(parseInt(value));
        } else if (option.equals(EXECUTOR_CORES)) {
          executorCores(parseInt(value));
        } else if (option.equals(EXECUTOR_MEMORY)) {
          executorMemory(value);
        } else if (option.equals(EXECUTOR_MEMORY_OVERHEAD)) {
          executorMemoryOverhead(value);
        } else if (option.startsWith(TASK_RESOURCE_PREFIX) && option.endsWith(AMOUNT_SUFFIX)) {
          taskResource(resourceName(option, TASK_RESOURCE_PREFIX, AMOUNT_SUFFIX), parseDouble(value));
        } else if (option.startsWith(EXECUTOR_RESOURCE_PREFIX) && option.endsWith(AMOUNT_SUFFIX)) {
          executorResource(resourceName(option, EXECUTOR_RESOURCE_PREFIX, AMOUNT_SUFFIX), parseLong(value));
        } else if (option.startsWith(EXECUTOR_RESOURCE_PREFIX) && option.endsWith(DISCOVERY_SCRIPT_SUFFIX)) {
          executorDiscoveryScript(resourceName(option, EXECUTOR_RESOURCE_PREFIX, DISCOVERY_SCRIPT_SUFFIX), value);
        } else if (option.startsWith(EXECUTOR_RESOURCE_PREFIX) && option.endsWith(VENDOR_SUFFIX)) {
          executorVendor(resourceName(option, EXECUTOR_RESOURCE_PREFIX, VENDOR_SUFFIX), value);
        } else {
          throw new IllegalArgumentException("unknown option '" + option + "'. The stage options are "
              + TASK_CPUS + ", " + TASK_RESOURCE_PREFIX + "<resource>" + AMOUNT_SUFFIX + ", " + EXECUTOR_CORES
              + ", " + EXECUTOR_MEMORY + ", " + EXECUTOR_MEMORY_OVERHEAD + ", " + EXECUTOR_RESOURCE_PREFIX
              + "<resource>" + AMOUNT_SUFFIX + " (" + DISCOVERY_SCRIPT_SUFFIX.substring(1) + ", "
              + VENDOR_SUFFIX.substring(1) + ")");
        }
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("Invalid inference stage setting " + key + "=" + value + " (model '"
            + model + "'): " + e.getMessage(), e);
      }
    }

    private static String resourceName(String option, String prefix, String suffix) {
      return option.substring(prefix.length(), Math.max(prefix.length(), option.length() - suffix.length()));
    }

    private static void checkResourceName(String resource) {
      if (resource == null || resource.isBlank() || resource.contains(".")) {
        throw new IllegalArgumentException("Invalid resource name '" + resource
            + "': use Spark's resource name, e.g. gpu or npu");
      }
    }

    private static String checkMemory(String amount, String what) {
      String text = amount == null ? "" : amount.trim();
      try {
        if (JavaUtils.byteStringAsMb(text) < 1) {
          throw new NumberFormatException("less than 1 MiB");
        }
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("Invalid " + what + " '" + amount + "': use a size such as 8g or 4096m");
      }
      return text;
    }

    private static int parseInt(String value) {
      try {
        return Integer.parseInt(value);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("not a whole number");
      }
    }

    private static long parseLong(String value) {
      try {
        return Long.parseLong(value);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("not a whole number");
      }
    }

    private static double parseDouble(String value) {
      try {
        return Double.parseDouble(value);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("not a number");
      }
    }
  }
}
