package io.github.sparkinfer.spark.cluster;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.TaskContext;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * A Spark plugin ({@code spark.plugins}) that counts, in each executor, the tasks of each stage
 * running at once, as the executor itself sees them start and end: how many tasks really shared
 * the executor's GPU. Read it inside the executor with {@link #maxRunning(int)}.
 *
 * <p>With {@value #STARTING_TOGETHER}=N in the application's conf, the first N tasks of each stage
 * in an executor wait for each other before they run (up to a minute): a test that expects N tasks
 * at once then does not depend on how fast the scheduler happens to launch them.
 */
public final class TaskConcurrencyPlugin implements SparkPlugin {
  private static final ConcurrentMap<Integer, AtomicInteger> RUNNING = new ConcurrentHashMap<>();
  private static final ConcurrentMap<Integer, AtomicInteger> MAX_RUNNING = new ConcurrentHashMap<>();
  // onTaskStart and onTaskSucceeded/Failed run on the task's thread; TaskContext is unset by the end.
  private static final ThreadLocal<Integer> STAGE = new ThreadLocal<>();
  static final String STARTING_TOGETHER = "spark.sparkinfertest.tasksStartingTogether";
  private static final ConcurrentMap<Integer, CountDownLatch> STARTS = new ConcurrentHashMap<>();

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
      private int together;

      @Override
      public void init(PluginContext context, Map<String, String> extraConf) {
        together = context.conf().getInt(STARTING_TOGETHER, 0);
      }

      @Override
      public void onTaskStart() {
        TaskContext task = TaskContext.get();
        int stage = task == null ? -1 : task.stageId();
        STAGE.set(stage);
        int now = RUNNING.computeIfAbsent(stage, s -> new AtomicInteger()).incrementAndGet();
        MAX_RUNNING.computeIfAbsent(stage, s -> new AtomicInteger()).accumulateAndGet(now, Math::max);
        if (together > 0) {
          CountDownLatch starts = STARTS.computeIfAbsent(stage, s -> new CountDownLatch(together));
          starts.countDown();
          try {
            // Later tasks find the latch open; a stage with fewer tasks goes on after the minute.
            starts.await(1, TimeUnit.MINUTES);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
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
