package io.github.sparkinfer.spark.sql

import org.apache.spark.sql.catalyst.FunctionIdentifier

/** Spark 3.5 shim: a running session's registry takes function names as they are. */
private[sql] object RegistryNames {
  def registered(id: FunctionIdentifier): FunctionIdentifier = id
}
