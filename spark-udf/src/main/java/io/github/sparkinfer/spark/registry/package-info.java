/**
 * Registered models: reading spark.sparkinfer.model.&lt;name&gt;.* with its precedence (function
 * argument, then per-model key, then session key, then default), the model's signature, how Spark
 * columns bind to its inputs and which Spark types its outputs give, text-model settings, and the
 * load-time compressed copy of a model (precision=int8|fp16|int4|auto).
 */
package io.github.sparkinfer.spark.registry;
