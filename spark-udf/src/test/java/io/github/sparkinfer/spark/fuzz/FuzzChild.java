package io.github.sparkinfer.spark.fuzz;

import io.github.sparkinfer.spark.SparkInferenceExtensions;
import java.nio.BufferUnderflowException;
import java.nio.BufferOverflowException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.apache.spark.SparkException;
import org.apache.spark.sql.SparkSession;

/**
 * The child JVM's side of a fuzz run: its Spark, each input's random, and the lines it reports on
 * stdout ({@link FuzzRunner} reads them): "FUZZ INPUT i description" before input i, "FUZZ OUTCOME
 * i kind detail" after it, "FUZZ DONE" when the deadline came. An INPUT with no OUTCOME is the
 * input that killed the JVM.
 */
final class FuzzChild {
  static final String PREFIX = "FUZZ ";

  /** What one input gave: accepted, refused clearly, refused unclearly, or a wrong result or breach. */
  enum Outcome { OK, REFUSED, UNCLEAR, WRONG }

  /** Exceptions that say where the code broke, not what is wrong with the input. */
  private static final List<Class<? extends Throwable>> BARE = List.of(
      NullPointerException.class, IndexOutOfBoundsException.class, NegativeArraySizeException.class,
      ClassCastException.class, ArithmeticException.class, BufferUnderflowException.class,
      BufferOverflowException.class, Error.class);

  private FuzzChild() {}

  /** Input {@code index}'s random: a function of the seed and the index alone, so one input can be replayed. */
  static SplittableRandom random(long seed, long index) {
    return new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index);
  }

  static SparkSession session(Path folder, String name) {
    return SparkSession.builder()
        .master("local[2]")
        .appName(name)
        .config("spark.sql.extensions", SparkInferenceExtensions.class.getName())
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sparkinfer.device", "cpu")
        .config("spark.sparkinfer.cache.dir", folder.resolve("model-cache").toString())
        .getOrCreate();
  }

  static void input(long index, String description) {
    report("INPUT " + index + " " + description);
  }

  static void outcome(long index, Outcome outcome, String detail) {
    report("OUTCOME " + index + " " + outcome + " " + detail);
  }

  static void done() {
    report("DONE");
  }

  /**
   * Null when {@code error} is a clear refusal: some exception in its chain names the model (in
   * quotes), and none above it is a bare NPE, index, size, cast or arithmetic exception or an
   * Error (StackOverflowError, OutOfMemoryError, ...). Otherwise, what is unclear about it.
   */
  static String unclear(Throwable error, String model) {
    String quoted = "'" + model + "'";
    for (Throwable cause = error; cause != null; cause = cause.getCause()) {
      for (Class<? extends Throwable> bare : BARE) {
        if (bare.isInstance(cause)) {
          return "bare " + describe(cause);
        }
      }
      // Spark's and the JDK's wrappers say nothing of their own; their cause does.
      boolean wrapper = cause.getCause() != null && (cause instanceof SparkException
          || cause instanceof ExecutionException || cause instanceof CompletionException
          || cause instanceof java.lang.reflect.InvocationTargetException);
      if (!wrapper && cause.getMessage() != null && cause.getMessage().contains(quoted)) {
        return null;
      }
    }
    return "no message names model " + quoted + ": " + describe(error);
  }

  static String describe(Throwable error) {
    String message = String.valueOf(error.getMessage());
    return error.getClass().getName() + ": " + (message.length() > 300 ? message.substring(0, 300) + "..." : message);
  }

  private static void report(String line) {
    System.out.println(PREFIX + line.replace('\n', ' ').replace('\r', ' '));
    System.out.flush();
  }
}
