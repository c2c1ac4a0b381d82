/**
 * sparkinfer's public API for Spark: {@link io.github.sparkinfer.spark.SparkInference} (register
 * models, install into a running session, model information, device bindings), {@link
 * io.github.sparkinfer.spark.Inference} (the DataFrame API), {@link io.github.sparkinfer.spark.ModelSpec},
 * {@link io.github.sparkinfer.spark.ModelValidation}, the configuration keys in {@link
 * io.github.sparkinfer.spark.InferenceProperties}, and the extension class for {@code
 * spark.sql.extensions}. Everything in the sub-packages is internal:
 *
 * <ul>
 *   <li>{@code sql}: the SQL functions (predict, embed, tokenize, compare_outputs, model_info) and
 *       their expressions;
 *   <li>{@code plan}: the optimizer rule that moves model calls into a batch node, the logical and
 *       physical nodes, the planner strategy and the columnar-input rule;
 *   <li>{@code registry}: registered models, their settings and precedence, how columns bind to model
 *       inputs, load-time compression;
 *   <li>{@code batch}: a task's model calls: direct input and output buffers, row and columnar runners,
 *       metrics;
 *   <li>{@code text}: the text path: tokenizers per executor, length-sorted windows and batches,
 *       pooling.
 * </ul>
 */
package io.github.sparkinfer.spark;
