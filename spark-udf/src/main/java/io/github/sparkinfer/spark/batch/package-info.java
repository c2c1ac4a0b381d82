/**
 * One task's model calls: rows or column vectors copied into direct, native-order input buffers,
 * one ONNX Runtime run per batch on the session of the executor's model cache, outputs read from
 * pre-allocated buffers into Spark rows, and the metrics the Spark UI shows.
 */
package io.github.sparkinfer.spark.batch;
