package io.github.sparkinfer.spark;

/**
 * Configuration keys of the Spark surface. Precedence, highest first: a function argument or
 * DataFrame API setting, then the per-model session key ({@code spark.sparkinfer.model.<name>.*}),
 * then the session-wide key, then the default.
 */
public final class InferenceProperties {
  private InferenceProperties() {}

  /** Prefix of every per-model key: {@code spark.sparkinfer.model.<name>.<option>}. */
  public static final String MODEL_PREFIX = io.github.sparkinfer.partitioning.PartitioningProperties.MODEL_PREFIX;

  /** Per-model: Hadoop FileSystem URI of the .onnx file (file:, hdfs:, s3a:, ...). Required. */
  public static final String MODEL_PATH_SUFFIX = ".path";

  /**
   * Per-model: the SHA-256 (64 hex digits, as sha256sum prints it) the .onnx file must have. Each
   * executor checks its local copy before ONNX Runtime reads it; a mismatch fails the query naming
   * the expected and the actual hash.
   */
  public static final String MODEL_SHA256_SUFFIX = ".sha256";

  /** Per-model: rows per model call. Falls back to {@link #BATCH_SIZE}. */
  public static final String MODEL_BATCH_SIZE_SUFFIX = ".batchSize";

  /** Per-model: comma-separated model outputs to return; default all outputs. */
  public static final String MODEL_OUTPUTS_SUFFIX = ".outputs";

  /** Per-model: ONNX Runtime intra-op threads per session. Falls back to {@link #INTRA_OP_THREADS}. */
  public static final String MODEL_INTRA_OP_THREADS_SUFFIX = ".intraOpThreads";

  /** Per-model: URI of the tokenizer.json (Hugging Face tokenizers format); makes it a text model. */
  public static final String MODEL_TOKENIZER_SUFFIX = ".tokenizer";

  /**
   * Per-model: longest token sequence, longer texts are truncated. Default: the tokenizer.json's
   * own truncation length, else the model's fixed sequence length, else 512.
   */
  public static final String MODEL_MAX_LENGTH_SUFFIX = ".maxLength";

  /** Per-model: how embed() pools token states into one vector: mean (default) or cls. */
  public static final String MODEL_POOLING_SUFFIX = ".pooling";

  /** Per-model: whether embed() scales vectors to unit length (default true). */
  public static final String MODEL_NORMALIZE_SUFFIX = ".normalize";

  /** Per-model: the output embed() reads; default the first float output of rank 3, else rank 2. */
  public static final String MODEL_EMBEDDING_OUTPUT_SUFFIX = ".embeddingOutput";

  /**
   * Per-model: whether embed() pools the token states inside the model's graph (sparkinfer adds a
   * pooling head to the executor's copy of the model): auto (default) on GPUs and NPUs, where it
   * keeps the [batch, tokens, dim] states on the device and copies one vector per text back; true
   * on every device; false never (pooled in Java). Falls back to {@link #POOL_ON_DEVICE}.
   */
  public static final String MODEL_POOL_ON_DEVICE_SUFFIX = ".poolOnDevice";

  /** Session-wide {@link #MODEL_POOL_ON_DEVICE_SUFFIX}. */
  public static final String POOL_ON_DEVICE = "spark.sparkinfer.poolOnDevice";

  public static final String POOL_ON_DEVICE_DEFAULT = "auto";

  /**
   * Per-model: whether embed()'s rows from all tasks of an executor join one queue per model and
   * device, batched together by length (cross-task batching, the tasks' threads running the
   * batches), with tokenizing on an executor-wide pool: auto (default) on GPUs and NPUs, true on
   * every device, false never (each task batches its own windows). Falls back to
   * {@link #CROSS_TASK_BATCHING}.
   */
  public static final String MODEL_CROSS_TASK_BATCHING_SUFFIX = ".crossTaskBatching";

  /** Session-wide {@link #MODEL_CROSS_TASK_BATCHING_SUFFIX}. */
  public static final String CROSS_TASK_BATCHING = "spark.sparkinfer.crossTaskBatching";

  public static final String CROSS_TASK_BATCHING_DEFAULT = "auto";

  /** Per-model: padded tokens (rows × longest row) per text batch. Falls back to {@link #TOKEN_BUDGET}. */
  public static final String MODEL_TOKEN_BUDGET_SUFFIX = ".tokenBudget";

  /**
   * Session-wide padded tokens per text batch. Unset, it depends on the device the model runs on:
   * {@link #TOKEN_BUDGET_CPU_DEFAULT} or {@link #TOKEN_BUDGET_ACCELERATOR_DEFAULT}.
   */
  public static final String TOKEN_BUDGET = "spark.sparkinfer.tokenBudget";

  /**
   * On the CPU small batches are faster: their activations stay in the caches, and a batch only
   * saves the per-call overhead (all-MiniLM-L6-v2, one intra-op thread: 256 tokens ran about 1.2x
   * the rows/s of 8192; benchmarks/RESULTS.md).
   */
  public static final long TOKEN_BUDGET_CPU_DEFAULT = 256;

  /**
   * GPUs and NPUs need large batches to be kept busy: the raw ONNX Runtime ceiling on the H200
   * (pre-tokenized MiniLM) was measured at this budget, and with cross-task batching on the H100
   * it ran at 75.1 k texts/s against 73.2 k for 8,192 tokens, with three MiniLM sessions in 41 GB
   * (benchmarks/RESULTS.md, GPU; sessions without memory patterns, see DeviceSessions).
   */
  public static final long TOKEN_BUDGET_ACCELERATOR_DEFAULT = 32768;

  /**
   * Rows of a partition that are tokenized, sorted by length and batched together; the next window
   * is tokenized while the model runs on this one. Output keeps the input's row order.
   */
  public static final String SORT_WINDOW_ROWS = "spark.sparkinfer.sortWindowRows";

  /** {@link #SORT_WINDOW_ROWS} on a CPU when unset. */
  public static final int SORT_WINDOW_ROWS_DEFAULT = 1024;

  /**
   * {@link #SORT_WINDOW_ROWS} on a GPU or NPU when unset: a window holds several batches of the
   * accelerator's token budget (about 1,100 texts of 29 tokens each at 32,768), so sorting by length
   * still leaves little padding.
   */
  public static final int SORT_WINDOW_ROWS_ACCELERATOR_DEFAULT = 8192;

  /**
   * Per-model: fp32 (default, the file as it is), int8, fp16, int4, or auto (int8 on CPU, fp16 on
   * GPU). Each executor compresses the model once (sparkinfer's compression module), cached under
   * a hash of the original's content.
   */
  public static final String MODEL_PRECISION_SUFFIX = ".precision";

  /**
   * Per-model: the ratio (at least 0, below 1; default 0) of every MatMul/Gemm → activation →
   * MatMul/Gemm chain's hidden units that each executor removes before loading the model
   * (structured pruning, units scored by weight norms; the compression module's StructuredPruner),
   * cached like {@link #MODEL_PRECISION_SUFFIX} and applied before it. Outputs change: compare with
   * the unpruned model on your data (ModelValidation) before serving it.
   */
  public static final String MODEL_PRUNE_RATIO_SUFFIX = ".pruneRatio";

  /**
   * Session-wide storage of int8 weights when a model runs at precision int8 (or auto on a CPU):
   * auto (default) chooses on each executor, for its CPU, the fastest scheme that is exact there
   * (u8s8 where ONNX Runtime's uint8 x int8 kernel is exact: VNNI, AMX, ARM; u8s8-paired on x86
   * CPUs without VNNI; u8u8 where neither is exact); u8s8, u8s8-paired, u8u8 or u8s8-reduced force
   * one. Precedence: the per-model key
   * (spark.sparkinfer.model.&lt;name&gt;.int8Scheme) &gt; this key &gt; the default.
   */
  public static final String INT8_SCHEME = "spark.sparkinfer.int8Scheme";

  public static final String INT8_SCHEME_DEFAULT = "auto";

  /** Per-model {@link #INT8_SCHEME}. */
  public static final String MODEL_INT8_SCHEME_SUFFIX = ".int8Scheme";

  /**
   * Per-model: what a row the model cannot take does (an array of the wrong length, a null
   * element, a value ONNX Runtime rejects, a text the tokenizer fails on): fail (the query fails,
   * naming the model, the input, the shapes and the row) or null (the row gets a null result and
   * is counted in the node's "rows the model could not take" metric; the rest of its batch is
   * still computed). Falls back to {@link #ON_ERROR}.
   */
  public static final String MODEL_ON_ERROR_SUFFIX = ".onError";

  /** Session-wide {@link #MODEL_ON_ERROR_SUFFIX}. */
  public static final String ON_ERROR = "spark.sparkinfer.onError";

  public static final String ON_ERROR_DEFAULT = "fail";

  /**
   * Session-wide: the most bytes the buffers of one model batch may hold (inputs and outputs), such
   * as 64m. A batch size whose fixed-size rows would need more is lowered to fit, with a WARN;
   * rows of dynamic size end a batch when it is full. Unset: min(256 MiB, executor memory / (4 ×
   * task slots per executor)), so the buffers of all of an executor's tasks stay well inside its
   * memory.
   */
  public static final String MAX_BATCH_BYTES = "spark.sparkinfer.maxBatchBytes";

  /** Session-wide rows per model call. */
  public static final String BATCH_SIZE = "spark.sparkinfer.batchSize";

  /**
   * Session-wide, read when a query is planned: predict() over plain columns of a columnar child (a
   * vectorized scan, a cache of primitive columns) gives columnar batches, the child's kept column
   * vectors beside a result column filled in bulk from the model's outputs, and Spark's
   * ColumnarToRow makes the rows above it. Off by default: the plan then shows ColumnarToRow above
   * the node, which the row path's plans never had.
   */
  public static final String COLUMNAR_OUTPUT = "spark.sparkinfer.columnarOutput";

  public static final String COLUMNAR_OUTPUT_DEFAULT = "false";

  /**
   * Rows per model call on a CPU when no batch size is set: larger batches only leave the caches
   * (benchmarks/RESULTS.md, Tabular MLP).
   */
  public static final int BATCH_SIZE_DEFAULT = 1024;

  /**
   * Rows per model call on a GPU or NPU when no batch size is set (no call, per-model or session
   * setting), chosen on the executor by the device its session is bound to: each run costs a
   * fixed launch and copy overhead that small batches do not cover (on the H200, 1,024-row batches
   * reached a quarter of raw ONNX Runtime's rows/s; benchmarks/RESULTS.md, GPU). Lowered to fit
   * {@link #MAX_BATCH_BYTES}.
   */
  public static final int BATCH_SIZE_ACCELERATOR_DEFAULT = 16384;

  /**
   * The largest batch size any of the batch-size settings accepts: rows per call beyond this only
   * hold more memory (a GPU is saturated long before; benchmarks/RESULTS.md).
   */
  public static final int BATCH_SIZE_MAX = 1 << 20;

  /**
   * Session-wide ONNX Runtime intra-op threads per session; 0 means "follow spark.task.cpus" of the
   * task that runs the model.
   */
  public static final String INTRA_OP_THREADS = "spark.sparkinfer.intraOpThreads";

  public static final int INTRA_OP_THREADS_DEFAULT = 0;

}
