package io.github.sparkinfer.device;

/** What {@link ModelCache#closeAll} did: sessions closed and left, runs it waited for. Immutable. */
public final class ShutdownSummary {
  private final int sessions;
  private final int leftOpen;
  private final int runsInFlight;
  private final long elapsedMillis;
  private final long gracePeriodMillis;

  ShutdownSummary(int sessions, int leftOpen, int runsInFlight, long elapsedMillis, long gracePeriodMillis) {
    this.sessions = sessions;
    this.leftOpen = leftOpen;
    this.runsInFlight = runsInFlight;
    this.elapsedMillis = elapsedMillis;
    this.gracePeriodMillis = gracePeriodMillis;
  }

  /** Sessions the cache held. */
  public int sessions() {
    return sessions;
  }

  /** Sessions still running at the deadline, left open instead of closed. */
  public int leftOpen() {
    return leftOpen;
  }

  /** Runs that held sessions when the shutdown began. */
  public int runsInFlight() {
    return runsInFlight;
  }

  public long elapsedMillis() {
    return elapsedMillis;
  }

  public long gracePeriodMillis() {
    return gracePeriodMillis;
  }

  @Override
  public String toString() {
    return "Model cache shut down in " + elapsedMillis + " ms (grace period " + gracePeriodMillis + " ms): "
        + (sessions - leftOpen) + " of " + sessions + " sessions closed, " + leftOpen + " left open; "
        + runsInFlight + " runs were in flight";
  }
}
