package io.github.sparkinfer.spark.batch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.util.AccumulatorV2;

/**
 * Where a plan node's tasks ran their model, as a bounded summary: per distinct binding (executor,
 * assigned, requested and bound device, provider, threads, fallback, pooling) the number of tasks,
 * with the first partitions of each listed; at most {@link #MAX_BINDINGS} distinct bindings (the
 * tasks past them counted as others) and {@link #MAX_LISTED} listed partitions in all. Registered
 * without a name: Spark copies a named accumulator's whole value into every task's TaskInfo and
 * the UI store, which a list of records per task made quadratic in the task count.
 */
public final class DeviceBindingSummary extends AccumulatorV2<String, DeviceBindingSummary> {
  private static final long serialVersionUID = 1L;
  static final int MAX_BINDINGS = 64;
  static final int MAX_LISTED = 1024;
  /** A fallback reason is an exception's message: kept to a bounded length. */
  static final int MAX_BINDING_CHARS = 1000;
  private static final String PARTITION = "partition=";

  private LinkedHashMap<String, Entry> bindings = new LinkedHashMap<>();
  private long tasks;
  private long others;
  private int listed;

  private static final class Entry implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    long tasks;
    int[] partitions = new int[0];
  }

  @Override
  public boolean isZero() {
    return tasks == 0;
  }

  @Override
  public DeviceBindingSummary copy() {
    DeviceBindingSummary copy = new DeviceBindingSummary();
    copy.merge(this);
    return copy;
  }

  @Override
  public void reset() {
    bindings = new LinkedHashMap<>();
    tasks = 0;
    others = 0;
    listed = 0;
  }

  /** One task's record: {@code partition=<p> <the binding>}. */
  @Override
  public void add(String record) {
    int partition = -1;
    String binding = record;
    if (record.startsWith(PARTITION)) {
      int space = record.indexOf(' ');
      try {
        partition = Integer.parseInt(record.substring(PARTITION.length(), space < 0 ? record.length() : space));
      } catch (NumberFormatException e) {
        partition = -1;
      }
      binding = space < 0 ? "" : record.substring(space + 1);
    }
    add(binding, 1, new int[] {partition});
  }

  private void add(String binding, long count, int[] partitions) {
    tasks += count;
    String key = binding.length() > MAX_BINDING_CHARS ? binding.substring(0, MAX_BINDING_CHARS) + "..." : binding;
    Entry entry = bindings.get(key);
    if (entry == null) {
      if (bindings.size() >= MAX_BINDINGS) {
        others += count;
        return;
      }
      entry = new Entry();
      bindings.put(key, entry);
    }
    entry.tasks += count;
    int room = Math.min(partitions.length, MAX_LISTED - listed);
    if (room > 0) {
      int[] grown = Arrays.copyOf(entry.partitions, entry.partitions.length + room);
      System.arraycopy(partitions, 0, grown, entry.partitions.length, room);
      entry.partitions = grown;
      listed += room;
    }
  }

  @Override
  public void merge(AccumulatorV2<String, DeviceBindingSummary> other) {
    DeviceBindingSummary that = (DeviceBindingSummary) other;
    for (Map.Entry<String, Entry> binding : that.bindings.entrySet()) {
      add(binding.getKey(), binding.getValue().tasks, binding.getValue().partitions);
    }
    tasks += that.others;
    others += that.others;
  }

  @Override
  public DeviceBindingSummary value() {
    return this;
  }

  /** Tasks recorded. */
  public long tasks() {
    return tasks;
  }

  /**
   * One record per listed task, {@code partition=<p> <binding>}: every task while the node has at
   * most {@link #MAX_LISTED} of them and {@link #MAX_BINDINGS} distinct bindings.
   */
  public List<String> records() {
    List<String> records = new ArrayList<>();
    for (Map.Entry<String, Entry> binding : bindings.entrySet()) {
      for (int partition : binding.getValue().partitions) {
        records.add(PARTITION + partition + " " + binding.getKey());
      }
    }
    return records;
  }

  /** One line per distinct binding, {@code tasks=<n> <binding>}, and {@code tasks=<n> others} past the cap. */
  public List<String> summary() {
    List<String> lines = new ArrayList<>();
    bindings.forEach((binding, entry) -> lines.add("tasks=" + entry.tasks + " " + binding));
    if (others > 0) {
      lines.add("tasks=" + others + " others");
    }
    return lines;
  }

  /** What the Spark UI would print: bounded, whatever the task count. */
  @Override
  public String toString() {
    return tasks + " tasks on " + bindings.size() + " device bindings" + (others > 0 ? " and others" : "");
  }
}
