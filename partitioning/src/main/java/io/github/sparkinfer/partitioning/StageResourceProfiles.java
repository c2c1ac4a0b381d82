package io.github.sparkinfer.partitioning;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.WeakHashMap;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.resource.ResourceProfile;

/**
 * Turns {@link StageResources} into the Spark {@link ResourceProfile} that the inference stage's RDD
 * runs with ({@code rdd.withResources(profile)}), on the driver.
 *
 * <p>One profile per application and request: the same settings in many queries reuse one profile
 * id, so Spark neither starts new executors for each query (dynamic allocation) nor sees two
 * profiles in one stage when two model calls with the same settings share it.
 *
 * <p>What Spark supports, and so what this checks before a job waits forever for resources no
 * executor has: with dynamic allocation off (standalone, YARN, Kubernetes), only task requests, run
 * on the application's executors, which must have the resources; with dynamic allocation on,
 * executor requests too, which get new executors. Spark's local mode has no stage-level scheduling;
 * there the stage keeps the default profile ({@link #notAppliedReason}).
 */
public final class StageResourceProfiles {
  private static final Map<SparkContext, Map<StageResources, ResourceProfile>> PROFILES = new WeakHashMap<>();

  private StageResourceProfiles() {}

  /**
   * Why a request cannot be applied under this application's master, when the policy is to run
   * with the default profile instead: Spark's local mode. Empty when it can be applied.
   */
  public static Optional<String> notAppliedReason(SparkConf conf) {
    String master = conf.get("spark.master", "");
    if (master.startsWith("local") && !master.startsWith("local-cluster")) {
      return Optional.of("Spark's local mode (" + master + ") has no stage-level scheduling: its tasks get no"
          + " GPU or NPU addresses, so the stage runs with the default profile");
    }
    return Optional.empty();
  }

  /**
   * Checks {@code resources} of {@code model}'s stage against this application's settings; throws
   * {@link IllegalArgumentException} naming what is missing and the fix when Spark would reject the
   * profile or never schedule its tasks.
   */
  public static void check(SparkConf conf, StageResources resources, String model) {
    if (resources.isEmpty() || notAppliedReason(conf).isPresent()) {
      return;
    }
    boolean dynamicAllocation = conf.getBoolean("spark.dynamicAllocation.enabled", false);
    String stage = "Cannot run the inference stage of model '" + model + "' with " + resources + ": ";
    if (!dynamicAllocation) {
      if (resources.requestsExecutors()) {
        throw new IllegalArgumentException(stage + "executor requests (" + PartitioningProperties.STAGE_PREFIX + "executor.*) need"
            + " new executors, which Spark starts for a stage only with dynamic allocation. Set"
            + " spark.dynamicAllocation.enabled=true (with spark.dynamicAllocation.shuffleTracking.enabled=true"
            + " or an external shuffle service), or drop the executor keys so the stage runs on the existing"
            + " executors with task requests only");
      }
      resources.taskResources().forEach((resource, amount) -> {
        long executorAmount = conf.getLong("spark.executor.resource." + resource + ".amount", 0);
        if (executorAmount < 1) {
          throw new IllegalArgumentException(stage + "its tasks ask for " + resource + " but the executors have"
              + " none (spark.executor.resource." + resource + ".amount is not set) and dynamic allocation is"
              + " off, so its tasks would wait forever. Give executors the resource with"
              + " spark.executor.resource." + resource + ".amount and its discoveryScript (tasks of other"
              + " stages need no spark.task.resource." + resource + ".amount), or enable dynamic allocation"
              + " and request executor resources for the stage");
        }
        if (amount > executorAmount) {
          throw new IllegalArgumentException(stage + "a task asks for " + amount + " " + resource + " but an"
              + " executor has " + executorAmount + " (spark.executor.resource." + resource + ".amount), so its"
              + " tasks would wait forever. Lower the task amount or raise the executor amount");
        }
      });
      String executorCores = conf.get("spark.executor.cores", null);
      if (resources.taskCpus() > 0 && executorCores != null && resources.taskCpus() > Integer.parseInt(executorCores.trim())) {
        throw new IllegalArgumentException(stage + "a task asks for " + resources.taskCpus() + " CPUs but an"
            + " executor has " + executorCores.trim() + " cores (spark.executor.cores), so its tasks would wait"
            + " forever. Lower " + PartitioningProperties.STAGE_PREFIX + PartitioningProperties.TASK_CPUS);
      }
    }
  }

  /**
   * The profile of {@code resources} in {@code context}'s application: created (and checked) on
   * first use, then reused. Empty when the master cannot apply it ({@link #notAppliedReason}).
   */
  public static Optional<ResourceProfile> profileFor(SparkContext context, StageResources resources, String model) {
    SparkConf conf = context.getConf();
    if (resources.isEmpty() || notAppliedReason(conf).isPresent()) {
      return Optional.empty();
    }
    check(conf, resources, model);
    synchronized (PROFILES) {
      return Optional.of(PROFILES.computeIfAbsent(context, ignored -> new HashMap<>())
          .computeIfAbsent(resources, StageResources::toResourceProfile));
    }
  }
}
