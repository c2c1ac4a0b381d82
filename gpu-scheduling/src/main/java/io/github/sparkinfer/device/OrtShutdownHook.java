package io.github.sparkinfer.device;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes ONNX Runtime's own JVM shutdown hook out, so that the native environment lives until the
 * process ends.
 *
 * <p>ORT's Java API (since 1.11, onnxruntime PR 10670; 1.29 still) registers, when the environment
 * is created, a shutdown hook ({@code OrtEnvironment$OrtEnvCloser}) that calls {@code
 * OrtReleaseEnv}: the environment, its logging manager and default logger are freed. The JVM starts
 * every shutdown hook at once, so on SIGTERM that release runs beside the model cache's hook, which
 * is still waiting for the runs in flight, and beside task threads that are still loading models:
 * those threads then use freed native memory (a SIGSEGV inside OrtSession.run, issue 28 finding 11;
 * createSession fails with "Attempt to use DefaultLogger but none has been registered", as in
 * onnxruntime issue 31352). Nothing in the Java API orders that hook after ours, so it is removed:
 * the environment is never released, as ORT's native code itself does when the process is exiting
 * (OrtEnv::ShouldSkipShutdownCleanup lets it leak), and the operating system takes its memory.
 *
 * <p>The hook is found through the JDK's hook table ({@code java.lang.ApplicationShutdownHooks}),
 * which needs {@code --add-opens=java.base/java.lang=ALL-UNNAMED}; Spark starts drivers and
 * executors with it. Without it, a WARN says so and ORT's hook stays: shutdown then behaves as
 * before. Never throws: this must not stop a JVM.
 */
final class OrtShutdownHook {
  private static final Logger LOG = LoggerFactory.getLogger(OrtShutdownHook.class);
  private static final String CLOSER = "ai.onnxruntime.OrtEnvironment$OrtEnvCloser";

  private OrtShutdownHook() {}

  /**
   * Removes every registered ORT environment closer.
   *
   * @return how many were removed; 0 also when they cannot be found (logged)
   */
  static int remove() {
    List<Thread> closers;
    try {
      closers = registered();
    } catch (ReflectiveOperationException | RuntimeException e) {
      LOG.warn("Cannot take ONNX Runtime's own shutdown hook out ({}): it releases ORT's environment when the JVM"
          + " exits, at the same time as the model cache waits for the model runs in flight, and such a run may then"
          + " crash the JVM. Start the JVM with --add-opens=java.base/java.lang=ALL-UNNAMED (Spark's default Java"
          + " options have it)", e.toString());
      return 0;
    }
    int removed = 0;
    for (Thread closer : closers) {
      try {
        if (Runtime.getRuntime().removeShutdownHook(closer)) {
          removed++;
        }
      } catch (IllegalStateException shuttingDown) {
        // The JVM is exiting already: the hooks have started, nothing can be taken out any more.
        return removed;
      }
    }
    return removed;
  }

  /** ORT's environment closers among the JVM's shutdown hooks; empty once the JVM is exiting. */
  static List<Thread> registered() throws ReflectiveOperationException {
    Class<?> table = Class.forName("java.lang.ApplicationShutdownHooks");
    Field hooksField = table.getDeclaredField("hooks");
    hooksField.setAccessible(true);
    List<Thread> hooks;
    // The JDK's own lock for its table.
    synchronized (table) {
      Map<?, ?> registered = (Map<?, ?>) hooksField.get(null);
      // Null once the JVM has started the hooks.
      hooks = registered == null ? List.of() : new ArrayList<>(asThreads(registered));
    }
    List<Thread> closers = new ArrayList<>();
    for (Thread hook : hooks) {
      Object task = task(hook);
      if (task != null && task.getClass().getName().equals(CLOSER)) {
        closers.add(hook);
      }
    }
    return closers;
  }

  private static List<Thread> asThreads(Map<?, ?> registered) {
    List<Thread> threads = new ArrayList<>();
    for (Object key : registered.keySet()) {
      threads.add((Thread) key);
    }
    return threads;
  }

  /** The Runnable a thread was made with: Thread.target up to JDK 20, Thread.holder.task from JDK 21. */
  private static Object task(Thread thread) throws ReflectiveOperationException {
    try {
      Field target = Thread.class.getDeclaredField("target");
      target.setAccessible(true);
      return target.get(thread);
    } catch (NoSuchFieldException newerJdk) {
      Field holderField = Thread.class.getDeclaredField("holder");
      holderField.setAccessible(true);
      Object holder = holderField.get(thread);
      if (holder == null) {
        return null;
      }
      Field task = holder.getClass().getDeclaredField("task");
      task.setAccessible(true);
      return task.get(holder);
    }
  }
}
