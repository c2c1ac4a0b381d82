package io.github.sparkinfer.benchmarks;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * A model over 2 GB through predict(): y = x · w with w a float [576, 1,048,576] initializer (2.25
 * GiB) stored as external data next to the .onnx, as large models are. It runs the whole path (the
 * cache copies the .onnx and its data file, ONNX Runtime loads them, Spark calls the model) and
 * checks sampled outputs exactly: x and w are multiples of 1/4 and 1/8 small enough that every sum
 * is exact in float32, whatever order ONNX Runtime adds in.
 *
 * <p>{@code ./mvnw -q -B -pl benchmarks exec:exec -Dbenchmark.main=io.github.sparkinfer.benchmarks.LargeModelCheck}
 * (needs about 5 GB of disk under target/ and 4 GB of memory).
 */
public final class LargeModelCheck {
  private static final int ROWS = 576;
  private static final int COLUMNS = 1 << 20;

  private LargeModelCheck() {}

  public static void main(String[] args) throws Exception {
    Path work = Paths.get(argument(args, "--work-dir", "target/benchmark-data")).resolve("large-model");
    Files.createDirectories(work);
    Path weights = work.resolve("large.weights");
    long bytes = 4L * ROWS * COLUMNS;
    long start = System.nanoTime();
    if (!Files.exists(weights) || Files.size(weights) != bytes) {
      writeWeights(weights);
    }
    Path model = work.resolve("large.onnx");
    byte[] onnx = matMulModel("large.weights");
    if (!Files.exists(model) || !java.util.Arrays.equals(Files.readAllBytes(model), onnx)) {
      Files.write(model, onnx);
    }
    System.out.printf("model: %s (%d bytes) + %s (%d bytes, %.2f GiB), written in %.1f s%n", model, Files.size(model),
        weights, bytes, bytes / (double) (1L << 30), (System.nanoTime() - start) / 1e9);

    // A fresh cache: the run measures the copy, and counts the copies it made.
    Path cache = work.resolve("cache");
    if (Files.exists(cache)) {
      try (Stream<Path> files = Files.walk(cache)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(file -> file.toFile().delete());
      }
    }
    SparkSession spark = SparkSession.builder().appName("large-model-check").master("local[2]")
        .config("spark.sql.extensions", io.github.sparkinfer.spark.SparkInferenceExtensions.class.getName())
        .config("spark.ui.enabled", false).config("spark.driver.host", "127.0.0.1")
        .config("spark.sparkinfer.device", "cpu").config("spark.sparkinfer.cache.dir", cache.toString())
        .getOrCreate();
    try {
      start = System.nanoTime();
      spark.sql("SET spark.sparkinfer.model.large.path=" + model.toUri());
      spark.sql("SET spark.sparkinfer.model.large.batchSize=2");
      spark.sql("SELECT * FROM model_info('large')").show(false);
      double analysis = (System.nanoTime() - start) / 1e9;
      start = System.nanoTime();
      List<Row> rows = spark.sql("SELECT id, predict('large', transform(sequence(0, " + (ROWS - 1) + "),"
          + " i -> CAST((id + 1) * ((i % 5) - 2) / 4.0 AS FLOAT))) AS y FROM range(4)").collectAsList();
      double query = (System.nanoTime() - start) / 1e9;
      int checked = 0;
      for (Row row : rows) {
        long id = row.getLong(0);
        List<Float> y = row.getList(1);
        if (y.size() != COLUMNS) {
          throw new IllegalStateException("row " + id + ": " + y.size() + " outputs, expected " + COLUMNS);
        }
        for (int j = 0; j < COLUMNS; j += 4099) {
          double expected = 0;
          for (int i = 0; i < ROWS; i++) {
            expected += (id + 1) * ((i % 5) - 2) / 4.0 * weight(i, j);
          }
          if (y.get(j) != (float) expected) {
            throw new IllegalStateException("row " + id + " output " + j + ": " + y.get(j) + ", expected " + expected);
          }
          checked++;
        }
      }
      long copied;
      try (Stream<Path> files = Files.walk(cache)) {
        copied = files.filter(file -> file.getFileName().toString().equals("large.weights")).count();
      }
      System.out.printf("analysis (copy of .onnx + 2.25 GiB data, ONNX Runtime load): %.1f s; query over 4 rows: %.1f s;"
          + " %d outputs checked, all exact; data file copies in the cache: %d%n", analysis, query, checked, copied);
      if (copied != 1) {
        throw new IllegalStateException("expected one copy of the data file in " + cache + ", found " + copied);
      }
    } finally {
      spark.stop();
    }
  }

  /** w[i][j]: a multiple of 1/8 from -6/8 to 6/8. */
  private static float weight(int i, int j) {
    return (((i * 31 + j * 17) % 13) - 6) / 8f;
  }

  private static void writeWeights(Path file) throws IOException {
    ByteBuffer row = ByteBuffer.allocateDirect(4 * COLUMNS).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      for (int i = 0; i < ROWS; i++) {
        row.clear();
        for (int j = 0; j < COLUMNS; j++) {
          row.putFloat(weight(i, j));
        }
        row.flip();
        while (row.hasRemaining()) {
          channel.write(row);
        }
      }
    }
  }

  /** The ONNX protobuf of y = MatMul(x, w), w external at {@code location}; written by hand, no weights inline. */
  private static byte[] matMulModel(String location) {
    Message weights = new Message().varint(1, ROWS).varint(1, COLUMNS).varint(2, 1).string(8, "w")
        .bytes(13, new Message().string(1, "location").string(2, location).bytes())
        .bytes(13, new Message().string(1, "offset").string(2, "0").bytes())
        .bytes(13, new Message().string(1, "length").string(2, String.valueOf(4L * ROWS * COLUMNS)).bytes())
        .varint(14, 1);
    Message node = new Message().string(1, "x").string(1, "w").string(2, "y").string(3, "matmul").string(4, "MatMul");
    Message graph = new Message().bytes(1, node.bytes()).string(2, "large").bytes(5, weights.bytes())
        .bytes(11, value("x", "batch", ROWS)).bytes(12, value("y", "batch", COLUMNS));
    return new Message().varint(1, 8).string(2, "sparkinfer-benchmarks").bytes(7, graph.bytes())
        .bytes(8, new Message().varint(2, 17).bytes()).bytes();
  }

  private static byte[] value(String name, String batch, long width) {
    Message shape = new Message().bytes(1, new Message().string(2, batch).bytes()).bytes(1, new Message().varint(1, width).bytes());
    Message tensor = new Message().varint(1, 1).bytes(2, shape.bytes());
    return new Message().string(1, name).bytes(2, new Message().bytes(1, tensor.bytes()).bytes()).bytes();
  }

  private static String argument(String[] args, String name, String fallback) {
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals(name)) {
        return args[i + 1];
      }
    }
    return fallback;
  }

  /** Protobuf wire format: varint and length-delimited fields. */
  private static final class Message {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    Message varint(int field, long value) {
      write((long) field << 3);
      write(value);
      return this;
    }

    Message string(int field, String value) {
      return bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    Message bytes(int field, byte[] value) {
      write(((long) field << 3) | 2);
      write(value.length);
      out.writeBytes(value);
      return this;
    }

    byte[] bytes() {
      return out.toByteArray();
    }

    private void write(long value) {
      while ((value & ~0x7fL) != 0) {
        out.write((int) ((value & 0x7f) | 0x80));
        value >>>= 7;
      }
      out.write((int) value);
    }
  }
}
