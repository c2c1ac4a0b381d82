package io.github.sparkinfer.device;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

/**
 * When an ONNX Runtime session may be closed: only when no run holds it. ORT does not guard a
 * session closed during a run; the run's thread then reads freed memory and the JVM dies with
 * SIGSEGV. Every run takes a hold ({@link #hold}) and gives it back when its outputs are closed;
 * {@link #close} stops new holds, waits for the held ones up to a deadline, and closes the session
 * only when none is left. Otherwise it leaves the session open, to be closed by whichever run gives
 * the last hold back; at shutdown the process may end first, and the native memory goes with it:
 * it is never freed from under a thread.
 *
 * <p>One per session, shared by every {@link CachedModel} view of it. Thread-safe; holding and
 * releasing is a short synchronized block, nothing next to a model run.
 */
final class SessionLifetime {
  private final OrtSession session;
  private int holds;
  // Tasks that hold the session between their runs (a task's lease, given back when it ends).
  private int leases;
  // The cache's clock (System.nanoTime, or a test's).
  private final java.util.function.LongSupplier clock;
  private long lastUsedNanos;
  private boolean closing;
  private boolean closed;
  private Throwable lateCloseFailure;

  SessionLifetime(OrtSession session) {
    this(session, System::nanoTime);
  }

  SessionLifetime(OrtSession session, java.util.function.LongSupplier clock) {
    this.session = session;
    this.clock = clock;
    this.lastUsedNanos = clock.getAsLong();
  }

  OrtSession session() {
    return session;
  }

  /**
   * Takes a hold for one run.
   *
   * @return false when the session is closing or closed: the caller must not run it
   */
  synchronized boolean hold() {
    if (closing) {
      return false;
    }
    holds++;
    lastUsedNanos = clock.getAsLong();
    return true;
  }

  /** A task's hold between its runs: the session is not evicted while a task has it. */
  synchronized boolean lease() {
    if (closing) {
      return false;
    }
    leases++;
    lastUsedNanos = clock.getAsLong();
    return true;
  }

  synchronized void unlease() {
    if (leases <= 0) {
      throw new IllegalStateException("A session lease was given back twice");
    }
    leases--;
    lastUsedNanos = clock.getAsLong();
  }

  /** Whether no run and no task holds the session. */
  synchronized boolean isUnused() {
    return holds == 0 && leases == 0 && !closing;
  }

  /** When a run or a task last took or gave back the session (by the cache's clock). */
  synchronized long lastUsedNanos() {
    return lastUsedNanos;
  }

  /**
   * Closes the session now if no run and no task holds it, atomically with {@link #hold} and
   * {@link #lease}: none can start in between.
   *
   * @return whether this call closed it
   */
  synchronized boolean closeIfUnused() throws OrtException {
    if (holds > 0 || leases > 0 || closing) {
      return false;
    }
    closing = true;
    closed = true;
    session.close();
    return true;
  }

  synchronized void release() {
    if (holds <= 0) {
      throw new IllegalStateException("A session hold was released twice");
    }
    holds--;
    lastUsedNanos = clock.getAsLong();
    if (holds == 0) {
      notifyAll();
      if (closing && !closed) {
        // close() gave up waiting for this run: the last run out closes the session.
        closed = true;
        try {
          session.close();
        } catch (OrtException | RuntimeException e) {
          lateCloseFailure = e;
        }
      }
    }
  }

  /** What closing the session from the last run's release threw, if it did. */
  synchronized Throwable lateCloseFailure() {
    return lateCloseFailure;
  }

  /** Runs holding the session now. */
  synchronized int holds() {
    return holds;
  }

  synchronized boolean isClosing() {
    return closing;
  }

  /**
   * Refuses new holds, waits until no run holds the session or {@code deadlineNanos} (of {@link
   * System#nanoTime()}) passes, and closes the session if none does.
   *
   * @return true when the session is closed (now or before), false when runs still held it at the
   *     deadline: it was left open, and the last of those runs closes it when it ends
   */
  synchronized boolean close(long deadlineNanos) throws OrtException {
    closing = true;
    boolean interrupted = false;
    while (holds > 0) {
      long left = deadlineNanos - System.nanoTime();
      if (left <= 0) {
        break;
      }
      try {
        wait(Math.max(1, left / 1_000_000), 0);
      } catch (InterruptedException e) {
        // Closing under a run is the one thing not to do: keep waiting until the deadline.
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    if (holds > 0) {
      return false;
    }
    if (!closed) {
      closed = true;
      session.close();
    }
    return true;
  }

  synchronized boolean isClosed() {
    return closed;
  }
}
