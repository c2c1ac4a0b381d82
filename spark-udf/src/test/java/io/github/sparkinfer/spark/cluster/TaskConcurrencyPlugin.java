package io.github.sparkinfer.spark.cluster;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.TaskContext;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * A Spark plugin ({@code spark.plugins}) that counts, in each executor, the tasks of each stage
 * running at once, as the executor itself sees them start and end: how many tasks really shared
 * the executor's GPU. Read it inside the executor with {@link #maxRunning(int)}.
 */
public final class TaskConcurrencyPlugin implements SparkPlugin {
  private static final ConcurrentMap<Integer, AtomicInteger> RUNNING = new ConcurrentHashMap<>();
  private static final ConcurrentMap<Integer, AtomicInteger> MAX_RUNNING = new ConcurrentHashMap<>();
  // onTaskStart and onTaskSucceeded/Failed run on the task's thread; TaskContext is unset by the end.
  private static final ThreadLocal<Integer> STAGE = new ThreadLocal<>();

  /** The most tasks of {@code stageId} that ran at once in this JVM. */
  public static int maxRunning(int stageId) {
    AtomicInteger max = MAX_RUNNING.get(stageId);
    return max == null ? 0 : max.get();
  }

  @Override
  public DriverPlugin driverPlugin() {
    return null;
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new ExecutorPlugin() {
      @Override
      public void onTaskStart() {
        TaskContext task = TaskContext.get();
        int stage = task == null ? -1 : task.stageId();
        STAGE.set(stage);
        int now = RUNNING.computeIfAbsent(stage, s -> new AtomicInteger()).incrementAndGet();
        MAX_RUNNING.computeIfAbsent(stage, s -> new AtomicInteger()).accumulateAndGet(now, Math::max);
      }

      @Override
      public void onTaskSucceeded() {
        ended();
      }

      @Override
      public void onTaskFailed(TaskFailedReason reason) {
        ended();
      }

      private void ended() {
        Integer stage = STAGE.get();
        if (stage != null) {
          STAGE.remove();
          RUNNING.get(stage).decrementAndGet();
        }
      }
    };
  }
}
