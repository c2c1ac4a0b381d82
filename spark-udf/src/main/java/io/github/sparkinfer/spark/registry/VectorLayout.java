package io.github.sparkinfer.spark.registry;

import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.UserDefinedType;

/**
 * Spark ML vectors, read without depending on spark-mllib: VectorUDT stores a vector as
 * struct&lt;type: tinyint, size: int, indices: array&lt;int&gt;, values: array&lt;double&gt;&gt;,
 * type 0 sparse and 1 dense.
 */
public final class VectorLayout {
  public static final int TYPE_FIELD = 0;
  public static final int SIZE_FIELD = 1;
  public static final int INDICES_FIELD = 2;
  public static final int VALUES_FIELD = 3;
  public static final int FIELD_COUNT = 4;
  public static final byte SPARSE = 0;

  private VectorLayout() {}

  static boolean isVector(DataType type) {
    if (!(type instanceof UserDefinedType)) {
      return false;
    }
    String userClass = ((UserDefinedType<?>) type).userClass().getName();
    return userClass.equals("org.apache.spark.ml.linalg.Vector")
        || userClass.equals("org.apache.spark.mllib.linalg.Vector");
  }
}
