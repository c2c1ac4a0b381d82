package io.github.sparkinfer.distillation;

import java.io.IOException;
import java.io.OutputStream;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.tribuo.Example;
import org.tribuo.impl.ArrayExample;
import org.tribuo.regression.Regressor;

/**
 * A trained student: its ONNX file (input {@code input}, float [batch, features]; output
 * {@code output}, float [batch, targets]) and how it was trained.
 */
public final class Student {
  private final org.tribuo.Model<Regressor> model;
  private final byte[] onnx;
  private final byte[] tribuoOnnx;
  private final String description;
  private final int features;
  private final int targets;
  private final long rows;
  private final double readSeconds;
  private final double trainSeconds;

  Student(org.tribuo.Model<Regressor> model, byte[] onnx, byte[] tribuoOnnx, String description, int features, int targets, long rows,
      double readSeconds, double trainSeconds) {
    this.model = model;
    this.onnx = onnx;
    this.tribuoOnnx = tribuoOnnx;
    this.description = description;
    this.features = features;
    this.targets = targets;
    this.rows = rows;
    this.readSeconds = readSeconds;
    this.trainSeconds = trainSeconds;
  }

  /** The ONNX model that serves (for a factorization machine, the compact layout); a copy. */
  public byte[] onnx() {
    return onnx.clone();
  }

  /** Tribuo's own ONNX export, as it wrote it; a copy. */
  public byte[] tribuoOnnx() {
    return tribuoOnnx.clone();
  }

  /** Writes the ONNX model to {@code uri} (any Hadoop URI; replaced if it exists). */
  public void writeTo(String uri, Configuration configuration) throws IOException {
    Path path = new Path(uri);
    FileSystem fileSystem = path.toUri().getScheme() == null ? FileSystem.getLocal(configuration)
        : path.getFileSystem(configuration);
    try (OutputStream out = fileSystem.create(path, true)) {
      out.write(onnx);
    }
  }

  /**
   * The student's outputs for one row by Tribuo itself, in Java (not through ONNX): the reference
   * its ONNX export is checked against.
   */
  public double[] predictInJava(float[] row) {
    if (row.length != features) {
      throw new IllegalArgumentException("The student takes " + features + " features, got " + row.length);
    }
    String[] names = new String[features];
    double[] values = new double[features];
    for (int i = 0; i < features; i++) {
      names[i] = String.format(Locale.ROOT, "f%06d", i);
      values[i] = row[i];
    }
    Example<Regressor> example = new ArrayExample<>(
        org.tribuo.regression.RegressionFactory.UNKNOWN_MULTIPLE_REGRESSOR, names, values);
    return model.predict(example).getOutput().getValues();
  }

  public int features() {
    return features;
  }

  public int targets() {
    return targets;
  }

  /** Rows it was trained on. */
  public long rows() {
    return rows;
  }

  /** Seconds reading the training set to the driver. */
  public double readSeconds() {
    return readSeconds;
  }

  /** Seconds Tribuo trained. */
  public double trainSeconds() {
    return trainSeconds;
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "student: %s; %d features → %d targets, %,d rows (read %.1f s, trained %.1f s),"
        + " ONNX %,d bytes%s", description, features, targets, rows, readSeconds, trainSeconds, onnx.length,
        onnx == tribuoOnnx ? "" : " (compact layout; Tribuo's own export " + String.format(Locale.ROOT, "%,d",
            tribuoOnnx.length) + " bytes)");
  }
}
