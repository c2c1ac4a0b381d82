package io.github.sparkinfer.spark.text;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkEnv;

/**
 * The executor's tokenizer threads for cross-task batching, one per executor core: tasks hand it
 * chunks of their windows' texts, so that tokenizing runs on every core beside the device's runs
 * instead of each task tokenizing its window before its first run. Daemon threads: they never hold
 * the JVM up; a chunk of a task that ended is skipped.
 */
final class TokenizerPool {
  private static volatile ExecutorService pool;
  private static volatile int threads;

  private TokenizerPool() {}

  /** The executor's cores (spark.executor.cores), else the JVM's processors (local mode). */
  static int threads() {
    if (threads == 0) {
      int cores = 0;
      SparkEnv environment = SparkEnv.get();
      if (environment != null) {
        cores = environment.conf().getInt("spark.executor.cores", 0);
      }
      threads = cores > 0 ? cores : Runtime.getRuntime().availableProcessors();
    }
    return threads;
  }

  static ExecutorService shared() {
    ExecutorService current = pool;
    if (current == null) {
      synchronized (TokenizerPool.class) {
        if (pool == null) {
          AtomicInteger count = new AtomicInteger();
          pool = Executors.newFixedThreadPool(threads(), runnable -> {
            Thread thread = new Thread(runnable, "sparkinfer-tokenizer-pool-" + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
          });
        }
        current = pool;
      }
    }
    return current;
  }
}
