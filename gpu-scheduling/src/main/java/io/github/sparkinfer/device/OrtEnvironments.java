package io.github.sparkinfer.device;

import ai.onnxruntime.OrtEnvironment;

/**
 * Creates the JVM's one ONNX Runtime environment safely. Every later {@code
 * OrtEnvironment.getEnvironment()} in the JVM returns the same environment. It lives until the
 * process ends: ORT's own shutdown hook, which would free it beside runs still in flight, is taken
 * out ({@link OrtShutdownHook}).
 */
public final class OrtEnvironments {
  /**
   * ONNX Runtime 1.29.0's environment creation uses stack in proportion to the length of the JVM's
   * command line: past about 4 KB (a long -cp or many -D options) it overflows the default 1 MiB
   * Java thread stack and the JVM dies with SIGSEGV. Creating it on a thread with a large stack
   * avoids that; the stack is only reserved address space, the pages used are few.
   */
  private static final long CREATION_STACK_BYTES = 256L << 20;

  private static OrtEnvironment environment;

  private OrtEnvironments() {}

  /** The JVM's ONNX Runtime environment; call this instead of OrtEnvironment.getEnvironment(). */
  public static synchronized OrtEnvironment get() {
    if (environment == null) {
      environment = createOnLargeStack();
      OrtShutdownHook.remove();
    }
    return environment;
  }

  private static OrtEnvironment createOnLargeStack() {
    OrtEnvironment[] created = new OrtEnvironment[1];
    Throwable[] failure = new Throwable[1];
    Thread creator =
        new Thread(
            null,
            () -> {
              try {
                created[0] = OrtEnvironment.getEnvironment();
              } catch (Throwable throwable) {
                failure[0] = throwable;
              }
            },
            "sparkinfer-ort-environment",
            CREATION_STACK_BYTES);
    creator.setDaemon(true);
    creator.start();
    joinUninterruptibly(creator);
    if (failure[0] instanceof RuntimeException) {
      throw (RuntimeException) failure[0];
    } else if (failure[0] instanceof Error) {
      throw (Error) failure[0];
    } else if (failure[0] != null) {
      throw new IllegalStateException("Cannot create the ONNX Runtime environment", failure[0]);
    }
    return created[0];
  }

  // The environment is created once for the JVM; a task interrupted while waiting must not leave
  // the next caller to start a second creation.
  private static void joinUninterruptibly(Thread thread) {
    boolean interrupted = false;
    while (true) {
      try {
        thread.join();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
