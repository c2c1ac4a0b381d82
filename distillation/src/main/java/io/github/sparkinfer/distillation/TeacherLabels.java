package io.github.sparkinfer.distillation;

import io.github.sparkinfer.spark.Inference;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;

/**
 * The teacher-labelling job: the registered teacher model runs over a table through sparkinfer's
 * batch path ({@code predict()} or {@code embed()}: batched, columnar, on the GPU Spark assigns), and
 * each row gets its soft target beside its inputs: the training set a student learns from, written
 * as Parquet.
 *
 * <pre>{@code
 * TeacherLabels.builder("teacher").inputs("features").target(SoftTarget.outputs()).build()
 *     .write(table.where("id % 10 != 0"), "hdfs://nn/distill/train");
 * }</pre>
 */
public final class TeacherLabels {
  /** The column that holds each row's soft target, array&lt;float&gt;, unless {@link Builder#targetColumn} says otherwise. */
  public static final String TARGET_COLUMN = "soft_target";

  private final String teacher;
  private final List<String> inputs;
  private final List<String> kept;
  private final boolean embed;
  private final String output;
  private final SoftTarget target;
  private final String targetColumn;

  private TeacherLabels(Builder builder) {
    this.teacher = builder.teacher;
    this.inputs = List.copyOf(builder.inputs);
    this.kept = List.copyOf(builder.kept);
    this.embed = builder.embed;
    this.output = builder.output;
    this.target = builder.target;
    this.targetColumn = builder.targetColumn;
  }

  public static Builder builder(String teacher) {
    return new Builder(teacher);
  }

  /** {@code table}'s kept and input columns and the teacher's soft target, lazily (nothing runs yet). */
  public Dataset<Row> label(Dataset<Row> table) {
    List<String> wanted = new ArrayList<>(kept);
    inputs.stream().filter(input -> !kept.contains(input)).forEach(wanted::add);
    for (String input : wanted) {
      if (!List.of(table.columns()).contains(input)) {
        throw new IllegalArgumentException("Cannot label with teacher '" + teacher + "': the table has no column '"
            + input + "' (its columns: " + String.join(", ", table.columns()) + "). Give the teacher's input columns"
            + " with inputs(...) and other columns to keep with keep(...)");
      }
    }
    Column[] columns = inputs.stream().map(functions::col).toArray(Column[]::new);
    Inference call = embed ? Inference.embed(teacher) : Inference.model(teacher);
    if (output != null) {
      call = call.output(output);
    }
    String teacherColumn = "__sparkinfer_teacher_output";
    Dataset<Row> scored = call.input(columns).as(teacherColumn).transform(table.select(wanted.stream().map(functions::col).toArray(Column[]::new)));
    DataType type = scored.schema().apply(teacherColumn).dataType();
    if (!(type instanceof ArrayType) || ((ArrayType) type).elementType() instanceof ArrayType) {
      throw new IllegalArgumentException("Cannot label with teacher '" + teacher + "': its result is " + type.simpleString()
          + ", not one vector per row (array<float>). Choose one output of shape [batch, n] with output(...)");
    }
    return scored.withColumn(targetColumn, target.of(functions.col(teacherColumn))).drop(teacherColumn);
  }

  /** Runs the job: the labelled rows written as Parquet to {@code uri} (any Hadoop URI), which must not exist. */
  public LabelledSet write(Dataset<Row> table, String uri) {
    long start = System.nanoTime();
    label(table).write().mode(SaveMode.ErrorIfExists).parquet(uri);
    double seconds = (System.nanoTime() - start) / 1e9;
    long rows = table.sparkSession().read().parquet(uri).count();
    return new LabelledSet(uri, rows, seconds, inputs, targetColumn, target);
  }

  /** What {@link #write} wrote. Immutable. */
  public static final class LabelledSet {
    private final String uri;
    private final long rows;
    private final double seconds;
    private final List<String> inputs;
    private final String targetColumn;
    private final SoftTarget target;

    LabelledSet(String uri, long rows, double seconds, List<String> inputs, String targetColumn, SoftTarget target) {
      this.uri = uri;
      this.rows = rows;
      this.seconds = seconds;
      this.inputs = List.copyOf(inputs);
      this.targetColumn = targetColumn;
      this.target = target;
    }

    public String uri() {
      return uri;
    }

    public long rows() {
      return rows;
    }

    /** Wall time of the labelling job, from the first row read to the last file written. */
    public double seconds() {
      return seconds;
    }

    public List<String> inputs() {
      return inputs;
    }

    public String targetColumn() {
      return targetColumn;
    }

    public SoftTarget target() {
      return target;
    }

    @Override
    public String toString() {
      return String.format(Locale.ROOT, "%,d rows labelled (%s) in %.1f s (%,.0f rows/s) at %s", rows, target, seconds,
          rows / seconds, uri);
    }
  }

  public static final class Builder {
    private final String teacher;
    private final List<String> inputs = new ArrayList<>();
    private final List<String> kept = new ArrayList<>();
    private boolean embed;
    private String output;
    private SoftTarget target = SoftTarget.outputs();
    private String targetColumn = TARGET_COLUMN;

    private Builder(String teacher) {
      this.teacher = Objects.requireNonNull(teacher, "teacher");
    }

    /** The teacher's input columns, fed to predict(); they are kept in the training set. */
    public Builder inputs(String... columns) {
      inputs.addAll(List.of(columns));
      return this;
    }

    /** More columns copied into the training set as they are (keys, ids), not fed to the teacher. */
    public Builder keep(String... columns) {
      kept.addAll(List.of(columns));
      return this;
    }

    /** A text column fed to embed(): the soft targets are the teacher's embeddings. */
    public Builder embed(String textColumn) {
      inputs.add(textColumn);
      embed = true;
      return this;
    }

    /** The teacher output to imitate, when it has several. */
    public Builder output(String name) {
      output = Objects.requireNonNull(name, "name");
      return this;
    }

    public Builder target(SoftTarget value) {
      target = Objects.requireNonNull(value, "target");
      return this;
    }

    public Builder targetColumn(String name) {
      targetColumn = Objects.requireNonNull(name, "name");
      return this;
    }

    public TeacherLabels build() {
      if (inputs.isEmpty()) {
        throw new IllegalArgumentException("Teacher '" + teacher + "': give the input columns (inputs(...) or embed(...))");
      }
      if (embed && target.isProbabilities()) {
        throw new IllegalArgumentException("Teacher '" + teacher + "': embeddings are not logits; use"
            + " SoftTarget.outputs() with embed(...)");
      }
      return new TeacherLabels(this);
    }
  }
}
