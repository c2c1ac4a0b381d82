/** Spark ML: a pipeline stage that runs an ONNX model on the batch path ({@link io.github.sparkinfer.spark.ml.InferenceTransformer}). */
package io.github.sparkinfer.spark.ml;
