/**
 * Catalyst glue: the rule that moves every model call out of its operator into a {@code BatchPredict}
 * node after filter push-down, the physical {@code BatchPredictExec} that runs a task's batches (rows or
 * columnar batches in, rows out), the strategy that plans it, and the rule that lets it read a columnar
 * child directly.
 */
package io.github.sparkinfer.spark.plan;
