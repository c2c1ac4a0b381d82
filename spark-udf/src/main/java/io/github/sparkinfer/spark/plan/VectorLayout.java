package io.github.sparkinfer.spark.plan;

import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.UserDefinedType;

/**
 * Spark ML vectors, read without depending on spark-mllib: VectorUDT stores a vector as
 * struct&lt;type: tinyint, size: int, indices: array&lt;int&gt;, values: array&lt;double&gt;&gt;,
 * type 0 sparse and 1 dense.
 */
final class VectorLayout {
  static final int TYPE_FIELD = 0;
  static final int SIZE_FIELD = 1;
  static final int INDICES_FIELD = 2;
  static final int VALUES_FIELD = 3;
  static final int FIELD_COUNT = 4;
  static final byte SPARSE = 0;

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
