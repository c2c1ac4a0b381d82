package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.InferenceProperties
import io.github.sparkinfer.spark.generate.GenerateOption
import io.github.sparkinfer.spark.registry.CallSettings
import io.github.sparkinfer.spark.registry.Errors
import io.github.sparkinfer.spark.registry.InputDescriptions
import io.github.sparkinfer.spark.registry.ModelBinding
import io.github.sparkinfer.spark.registry.ModelOutputs
import io.github.sparkinfer.spark.registry.ModelRegistry

import java.util.OptionalInt

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.catalyst.FunctionIdentifier
import org.apache.spark.sql.catalyst.expressions.{AttributeReference, Expression, ExpressionInfo, Literal}
import org.apache.spark.sql.catalyst.plans.logical.{LocalRelation, LogicalPlan}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.util.MapData
import org.apache.spark.sql.types.{IntegerType, MapType, StringType, StructType}
import org.apache.spark.unsafe.types.UTF8String

/** The SQL functions sparkinfer adds: predict(), embed(), generate() and friends, and the table function model_info(). */
object SqlFunctions {

  val PredictName = "predict"
  val EmbedName = "embed"
  val GenerateName = "generate"
  val GenerateWithErrorName = "generate_with_error"
  val ModelInfoName = "model_info"

  val predictInfo = new ExpressionInfo(
    classOf[PredictExpression].getName, null, PredictName,
    "_FUNC_(model, input1[, input2, ...]) - Runs the registered ONNX model `model` (a string" +
      " literal) over each row, in batches. Inputs map to the model's inputs by position, or by" +
      " field name when the only input is a struct. Returns the model's output column type, or a" +
      " struct of all outputs when the model has several. A null input gives a null result. A row the" +
      " model cannot take fails the query, naming the row; with spark.sparkinfer.model.<name>.onError=null" +
      " it gets a null result instead (predict_with_error() gives the reason).",
    """
    Arguments:
      * model - name of a model registered with SET spark.sparkinfer.model.<name>.path=<URI>
      * input - numeric scalars (tensor [batch] or [batch, 1]), numeric arrays or ML vectors
          (tensor [batch, n], or reshaped to the input's fixed shape), or one struct whose field
          names are the model's input names

    Examples:
      > SET spark.sparkinfer.model.mlp.path=hdfs://nn/models/mlp.onnx;
      > SELECT id, _FUNC_('mlp', features) AS scores FROM t;
      > SELECT * FROM model_info('mlp');
  """)

  val modelInfoInfo = new ExpressionInfo(
    "io.github.sparkinfer.spark.sql.SqlFunctions", null, ModelInfoName,
    "_FUNC_(model) - One row per input and output of the registered model: kind ('input' or" +
      " 'output'), position, name, element type, shape (-1 or a symbolic name is dynamic) and the" +
      " Spark type predict() accepts or returns.",
    "")

  val embedInfo = new ExpressionInfo(
    classOf[EmbedExpression].getName, null, EmbedName,
    "_FUNC_(model, text) - The embedding of each text, from the registered text model `model` (a" +
      " string literal; registered with a tokenizer). Texts are tokenized on the executors," +
      " truncated to the model's maximum length, batched by token length, pooled (mean or cls)" +
      " and normalized. Returns array<float>; a null text gives null.",
    """
    Examples:
      > SET spark.sparkinfer.model.minilm.path=hdfs://nn/models/all-minilm-l6-v2.onnx;
      > SET spark.sparkinfer.model.minilm.tokenizer=hdfs://nn/models/tokenizer.json;
      > SELECT id, _FUNC_('minilm', body) AS embedding FROM docs;
  """)

  /**
   * The functions that run a model over rows, by name, from a bound model and the call's arguments:
   * the SQL descriptors below, the DataFrame API (`Inference`) and the ML stage's `function` param
   * build their calls here. A new model function is one entry here and one descriptor.
   */
  val modelInvocations: Map[String, (ModelBinding, Seq[Expression]) => Expression] = Map(
    PredictName -> ((binding, children) => PredictExpression(binding, children)),
    EmbedName -> ((binding, children) => EmbedExpression(binding, children)),
    GenerateName -> ((binding, children) => GenerateExpression(binding, children)))

  /** [[modelInvocations]]' names, for Java callers (the ML stage's param validator). */
  def modelInvocationNames: Array[String] = modelInvocations.keys.toArray.sorted

  val PredictWithErrorName = "predict_with_error"
  val EmbedWithErrorName = "embed_with_error"

  val predictWithErrorInfo = new ExpressionInfo(
    classOf[PredictExpression].getName, null, PredictWithErrorName,
    "_FUNC_(model, input1[, input2, ...]) - predict(), returning struct<result, error>: a row the" +
      " model cannot take (an array of the wrong length, a null element, a value ONNX Runtime" +
      " rejects) gets a null result and the reason in `error`, and the other rows of its batch are" +
      " still computed; `error` is null for every other row. It never fails a query for such a row.",
    """
    Examples:
      > SELECT id, p.result AS scores, p.error FROM (SELECT id, _FUNC_('mlp', features) AS p FROM t);
  """)

  val embedWithErrorInfo = new ExpressionInfo(
    classOf[EmbedExpression].getName, null, EmbedWithErrorName,
    "_FUNC_(model, text) - embed(), returning struct<result, error>: a text the tokenizer or the" +
      " model cannot take gets a null result and the reason in `error`; the others are computed.",
    "")

  def predictWithErrorDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier(PredictWithErrorName), predictWithErrorInfo, arguments => {
      val binding = ModelRegistry.resolve(modelName(PredictWithErrorName, arguments), CallSettings.none().reportingErrors())
      modelInvocations(PredictName)(binding, textToInputs(binding, arguments.tail))
    })

  def embedWithErrorDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier(EmbedWithErrorName), embedWithErrorInfo, arguments =>
      modelInvocations(EmbedName)(
        ModelRegistry.resolve(modelName(EmbedWithErrorName, arguments), CallSettings.none().reportingErrors()),
        arguments.tail))

  def embedDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier(EmbedName), embedInfo, buildEmbed)

  def buildEmbed(arguments: Seq[Expression]): Expression = {
    val name = modelName(EmbedName, arguments)
    modelInvocations(EmbedName)(ModelRegistry.resolve(name, OptionalInt.empty(), java.util.List.of()), arguments.tail)
  }

  val generateInfo = new ExpressionInfo(
    classOf[GenerateExpression].getName, null, GenerateName,
    "_FUNC_(model, prompt[, options]) - Text generated by the registered decoder `model` (a string literal;" +
      " a decoder-only ONNX model exported with its key/value cache, registered with its tokenizer) for each" +
      " prompt: struct<text, tokens, finish_reason>, finish_reason being stop (a stop token or string), length" +
      " (maxNewTokens reached) or error (a row the model cannot take, under onError=null). Prompts are" +
      " batched by token length; rows keep their order. `options` is a map or named_struct of generate()" +
      " options (maxNewTokens, temperature, topK, topP, seed, repetitionPenalty, stopTokenIds, stopStrings," +
      " promptTemplate, systemPrompt, maxContext, contextOverflow, numBeams, decodeLoop, batchSize) over the keys" +
      " spark.sparkinfer.model.<name>.generate.<option> and spark.sparkinfer.generate.<option>. A null prompt" +
      " gives null.",
    """
    Examples:
      > SET spark.sparkinfer.model.gpt2.path=hdfs://nn/models/gpt2/decoder_model_merged.onnx;
      > SET spark.sparkinfer.model.gpt2.tokenizer=hdfs://nn/models/gpt2/tokenizer.json;
      > SELECT id, _FUNC_('gpt2', body, map('maxNewTokens', '32')).text AS continuation FROM docs;
      > SELECT _FUNC_('gpt2', question, named_struct('temperature', 0.7, 'seed', 42, 'stopStrings', '\n')) FROM q;
  """)

  val generateWithErrorInfo = new ExpressionInfo(
    classOf[GenerateExpression].getName, null, GenerateWithErrorName,
    "_FUNC_(model, prompt[, options]) - generate(), returning struct<result, error>: a prompt the model cannot" +
      " take (too long for maxContext, tokens outside its vocabulary, a run ONNX Runtime rejects) gets" +
      " finish_reason error and the reason in `error`; the other rows are generated.",
    "")

  def generateDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier(GenerateName), generateInfo, arguments => buildGenerate(GenerateName, arguments, CallSettings.none()))

  def generateWithErrorDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier(GenerateWithErrorName), generateWithErrorInfo,
      arguments => buildGenerate(GenerateWithErrorName, arguments, CallSettings.none().reportingErrors()))

  /** generate(model, prompt[, options]): the options become the call's own per-model keys, over the session's. */
  def buildGenerate(function: String, arguments: Seq[Expression], base: CallSettings): Expression = {
    if (arguments.size < 2 || arguments.size > 3) {
      throw Errors.analysis(s"$function takes the model name, a prompt column and optionally a map of options," +
        s" such as $function('gpt2', prompt, map('maxNewTokens', '32')), but got ${arguments.size} argument(s)")
    }
    val name = modelName(function, arguments)
    var call = base
    if (arguments.size == 3) {
      generateOptions(function, name, arguments(2)).foreach { case (option, value) =>
        call = call.`with`(InferenceProperties.MODEL_PREFIX + name + GenerateOption.MODEL_INFIX + option.key(), value)
      }
    }
    modelInvocations(GenerateName)(ModelRegistry.resolve(name, call), Seq(arguments(1)))
  }

  /** A constant map or named_struct of generate() options, each named as GenerateOption knows it. */
  private def generateOptions(function: String, model: String, options: Expression): Seq[(GenerateOption, String)] = {
    def fail(why: String) = Errors.analysis(s"$function('$model', prompt, options): $why. Give the options as a" +
      s" constant map or named_struct, such as map('maxNewTokens', '32', 'temperature', '0.7'); the options are" +
      s" ${GenerateOption.names()}")
    if (!options.foldable) {
      throw fail(s"the options ${options.sql} are not a constant")
    }
    val pairs: Seq[(String, Any)] = (options.dataType, options.eval()) match {
      case (_, null) => Seq.empty
      case (map: MapType, data: MapData) if map.keyType == StringType =>
        (0 until data.numElements()).map(i =>
          (data.keyArray().getUTF8String(i).toString,
            if (data.valueArray().isNullAt(i)) null else data.valueArray().get(i, map.valueType)))
      case (struct: StructType, row: InternalRow) =>
        struct.fields.toSeq.zipWithIndex.map { case (field, i) =>
          (field.name, if (row.isNullAt(i)) null else row.get(i, field.dataType))
        }
      case (other, _) => throw fail(s"the options are of type ${other.simpleString}")
    }
    pairs.map { case (key, value) =>
      val option = GenerateOption.named(key)
      if (option == null) {
        val closest = GenerateOption.closest(key)
        throw fail(s"there is no option '$key'" + (if (closest == null) "" else s" (did you mean ${closest.key()}?)"))
      }
      if (value == null) {
        throw fail(s"option '$key' is null")
      }
      (option, optionText(value))
    }
  }

  /**
   * An option value as the option's text: an array of ids joined with commas, an array of strings as a JSON
   * array (stopStrings), anything else as it prints.
   */
  private def optionText(value: Any): String = value match {
    case array: org.apache.spark.sql.catalyst.util.ArrayData =>
      val elements = array.toObjectArray(
        if (array.numElements() > 0 && array.isInstanceOf[org.apache.spark.sql.catalyst.util.GenericArrayData] &&
          array.array.headOption.exists(_.isInstanceOf[UTF8String])) StringType else IntegerType)
      if (elements.headOption.exists(_.isInstanceOf[UTF8String])) {
        val mapper = new com.fasterxml.jackson.databind.ObjectMapper()
        mapper.writeValueAsString(elements.map(_.toString))
      } else {
        elements.mkString(",")
      }
    case other => other.toString
  }

  val compareOutputsInfo = new ExpressionInfo(
    classOf[CompareOutputsExpression].getName, null, "compare_outputs",
    "_FUNC_(a, b) - How close two outputs of one row are (for example predict('m', x) and" +
      " predict('m_int8', x)): struct<cosine, max_abs_error, argmax_equal> over their values." +
      " Aggregate it (avg, min, max) to validate a compressed model on a table.",
    "")

  def compareOutputsDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier("compare_outputs"), compareOutputsInfo, arguments => {
      if (arguments.size != 2) {
        throw Errors.analysis(s"compare_outputs takes two arguments, but got ${arguments.size}")
      }
      CompareOutputsExpression(arguments.head, arguments(1))
    })

  def predictDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier(PredictName), predictInfo, buildPredict)

  def modelInfoDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => LogicalPlan) =
    (FunctionIdentifier(ModelInfoName), modelInfoInfo, buildModelInfo)

  def buildPredict(arguments: Seq[Expression]): Expression = {
    val name = modelName(PredictName, arguments)
    val binding = ModelRegistry.resolve(name, OptionalInt.empty(), java.util.List.of())
    modelInvocations(PredictName)(binding, textToInputs(binding, arguments.tail))
  }

  /** On a text model, one string argument is tokenized into the model's inputs. */
  def textToInputs(binding: ModelBinding, inputs: Seq[Expression]): Seq[Expression] = inputs match {
    case Seq(text) if binding.text() != null && text.resolved && text.dataType == StringType =>
      Seq(TokenizeExpression(binding, text))
    case other => other
  }

  val tokenizeInfo = new ExpressionInfo(
    classOf[TokenizeExpression].getName, null, "tokenize",
    "_FUNC_(model, text) - The registered text model's tokenizer applied to `text`: a struct of" +
      " input_ids, attention_mask and token_type_ids (array<bigint>), truncated and padded with zeros" +
      " to the model's maximum length.",
    "")

  def tokenizeDescriptor: (FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression) =
    (FunctionIdentifier("tokenize"), tokenizeInfo, arguments => {
      if (arguments.size != 2) {
        throw Errors.analysis(s"tokenize takes two arguments, the model name and a text, but got ${arguments.size}")
      }
      TokenizeExpression(
        ModelRegistry.resolve(modelName("tokenize", arguments), OptionalInt.empty(), java.util.List.of()),
        arguments(1))
    })

  /**
   * The one list of sparkinfer's scalar SQL functions: the session installer (extension and running
   * session alike) registers these, DESCRIBE FUNCTION shows their usage, and TestFunctionRegistry
   * checks docs/sql-functions.md against it. A new function is one descriptor here.
   */
  def scalarFunctions: Seq[(FunctionIdentifier, ExpressionInfo, Seq[Expression] => Expression)] = Seq(
    predictDescriptor, embedDescriptor, predictWithErrorDescriptor, embedWithErrorDescriptor, tokenizeDescriptor,
    compareOutputsDescriptor, generateDescriptor, generateWithErrorDescriptor)

  /** The table functions, as [[scalarFunctions]]. */
  def tableFunctions: Seq[(FunctionIdentifier, ExpressionInfo, Seq[Expression] => LogicalPlan)] =
    Seq(modelInfoDescriptor)

  /** Every function's name, scalar and table, for Java callers (tests, docs checks). */
  def functionNames: java.util.List[String] =
    (scalarFunctions.map(_._1.funcName) ++ tableFunctions.map(_._1.funcName)).asJava

  def buildModelInfo(arguments: Seq[Expression]): LogicalPlan = {
    if (arguments.size != 1) {
      throw Errors.analysis(s"model_info takes one argument, the model name, but got ${arguments.size}")
    }
    modelInfo(ModelRegistry.resolve(modelName(ModelInfoName, arguments), OptionalInt.empty(), java.util.List.of()))
  }

  def modelInfo(binding: ModelBinding): LogicalPlan = {
    val columns = Seq(
      AttributeReference("model", StringType, nullable = false)(),
      AttributeReference("kind", StringType, nullable = false)(),
      AttributeReference("position", IntegerType, nullable = false)(),
      AttributeReference("name", StringType, nullable = false)(),
      AttributeReference("element_type", StringType, nullable = false)(),
      AttributeReference("shape", StringType, nullable = false)(),
      AttributeReference("spark_type", StringType, nullable = true)())
    val signature = binding.signature()
    def rows(kind: String, specs: java.util.List[io.github.sparkinfer.device.TensorSpec], output: Boolean) =
      specs.asScala.zipWithIndex.map { case (spec, position) =>
        val sparkType =
          if (spec.elementType() == io.github.sparkinfer.device.TensorElementType.UNSUPPORTED) null
          else if (output) ModelOutputs.outputType(spec).simpleString
          else InputDescriptions.accepted(spec)
        InternalRow(
          UTF8String.fromString(binding.modelName), UTF8String.fromString(kind), position,
          UTF8String.fromString(spec.name()), UTF8String.fromString(spec.onnxTypeName().toLowerCase),
          UTF8String.fromString(spec.shapeString()),
          if (sparkType == null) null else UTF8String.fromString(sparkType))
      }
    LocalRelation(columns,
      (rows("input", signature.inputs(), output = false) ++
        rows("output", signature.outputs(), output = true)).toSeq)
  }

  private def modelName(function: String, arguments: Seq[Expression]): String = arguments.headOption match {
    case Some(literal @ Literal(value, StringType)) if value != null && literal.foldable => value.toString
    case Some(other) if other.foldable && other.dataType == StringType && other.eval() != null =>
      other.eval().toString
    case _ =>
      throw Errors.analysis(
        s"$function() takes the model name as its first argument, a string literal such as " +
          s"$function('minilm', ...), but got ${arguments.headOption.map(_.sql).getOrElse("no arguments")}")
  }
}
