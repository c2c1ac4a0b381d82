package io.github.sparkinfer.spark

import org.apache.spark.sql.SparkSessionExtensions

import io.github.sparkinfer.spark.sql.SessionInstaller

/**
 * Install with {@code spark.sql.extensions=io.github.sparkinfer.spark.SparkInferenceExtensions}:
 * adds predict() and model_info() to SQL and plans model calls into batch nodes. For a session
 * that is already running, call {@code SparkInference.install(spark)} instead.
 */
class SparkInferenceExtensions extends (SparkSessionExtensions => Unit) {
  override def apply(extensions: SparkSessionExtensions): Unit = SessionInstaller.inject(extensions)
}
