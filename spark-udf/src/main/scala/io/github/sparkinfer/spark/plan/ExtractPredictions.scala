package io.github.sparkinfer.spark.plan

import io.github.sparkinfer.spark.registry.Errors
import io.github.sparkinfer.spark.sql.ModelInvocation

import scala.collection.mutable

import org.apache.spark.sql.catalyst.expressions._
import org.apache.spark.sql.catalyst.expressions.aggregate.AggregateExpression
import org.apache.spark.sql.catalyst.plans.{Cross, Inner}
import org.apache.spark.sql.catalyst.plans.logical._
import org.apache.spark.sql.catalyst.rules.Rule
import org.apache.spark.sql.types.{ArrayType, DataType, MapType, StructType}

/**
 * Moves every predict() call out of the operator that holds it into a [[BatchPredict]] node below
 * it, whose result column the operator then reads. It runs after Spark's operator optimizations
 * (filters are already pushed down, so the model sees as few rows as possible), as Spark does for
 * Python UDFs. Handles Project, Filter, Aggregate, Join, and the other single-child operators
 * (Sort, Window, Generate, ...). Calls over aggregated values move above the Aggregate; join
 * conditions that call a model on both sides become a filter above an inner join.
 */
object ExtractPredictions extends Rule[LogicalPlan] {

  override def apply(plan: LogicalPlan): LogicalPlan = {
    val extracted = plan.transformUp {
      case node if !node.isInstanceOf[BatchPredict] && node.expressions.exists(hasPredict) =>
        extract(node)
    }
    val narrowed = extracted.transformDown {
      case project @ Project(list, batch: BatchPredict) =>
        project.copy(child = narrow(batch, AttributeSet(list.flatMap(_.references))))
    }
    shuffleBeforeGlobalSort(narrowed)
  }

  /**
   * A global sort samples its input to choose its ranges before it shuffles it, and Spark computes
   * that input twice for it, so a model call in the same stage would run twice per row. With a
   * shuffle (by hash of the row) between the call and the sort, the sampling and the sort both read
   * the shuffle's output and the model runs once. A sort under a LIMIT (top-k) takes no sample.
   */
  private def shuffleBeforeGlobalSort(plan: LogicalPlan): LogicalPlan = {
    val topK = plan.collect {
      case GlobalLimit(_, LocalLimit(_, sort: Sort)) => sort
      case GlobalLimit(_, sort: Sort) => sort
      case LocalLimit(_, sort: Sort) => sort
    }
    plan.transformDown {
      case sort: Sort if sort.global && !topK.exists(_ eq sort) && callsModelInSameStage(sort.child) =>
        val hashable = sort.child.output.filterNot(a => containsMap(a.dataType))
        sort.withNewChildren(Seq(RepartitionByExpression(hashable, sort.child, None)))
    }
  }

  // Spark cannot hash maps.
  private def containsMap(dataType: DataType): Boolean = dataType match {
    case _: MapType => true
    case array: ArrayType => containsMap(array.elementType)
    case struct: StructType => struct.fields.exists(field => containsMap(field.dataType))
    case _ => false
  }

  /** Whether `plan` runs a model call without a shuffle between it and `plan`'s output. */
  private def callsModelInSameStage(plan: LogicalPlan): Boolean = plan match {
    case _: BatchPredict => true
    case _: Project | _: Filter | _: SubqueryAlias | _: Sort | _: Generate | _: Sample =>
      plan.children.exists(callsModelInSameStage)
    case _ => false
  }

  /**
   * Keeps in a BatchPredict's output only the columns used above it, and so on down a chain of
   * them: a column that only fed the model is neither held nor copied into output rows.
   */
  private def narrow(batch: BatchPredict, required: AttributeSet): BatchPredict = {
    val kept = batch.passThrough.filter(required.contains)
    val child = batch.child match {
      case inner: BatchPredict => narrow(inner, AttributeSet(kept) ++ batch.prediction.references)
      case other => other
    }
    batch.copy(passThrough = kept, child = child)
  }

  private def hasPredict(expression: Expression): Boolean =
    expression.exists(_.isInstanceOf[ModelInvocation])

  private def predictsIn(expressions: Seq[Expression]): Seq[ModelInvocation] =
    expressions.flatMap(_.collect { case p: ModelInvocation => p })

  private def extract(node: LogicalPlan): LogicalPlan = node match {
    case project: Project =>
      val (child, results) = pushBelow(predictsIn(project.projectList), project.child)
      project.copy(
        projectList = project.projectList.map(replace(_, results).asInstanceOf[NamedExpression]),
        child = child)

    case filter: Filter =>
      val (child, results) = pushBelow(predictsIn(Seq(filter.condition)), filter.child)
      Project(filter.output, filter.copy(condition = replace(filter.condition, results), child = child))

    case aggregate: Aggregate if hasPredictOverAggregate(aggregate) =>
      val (projectList, inner) = moveAboveAggregate(aggregate)
      val extractedInner = if (inner.expressions.exists(hasPredict)) extract(inner) else inner
      extract(Project(projectList, extractedInner))

    case aggregate: Aggregate =>
      val (child, results) = pushBelow(predictsIn(aggregate.expressions), aggregate.child)
      aggregate.copy(
        groupingExpressions = aggregate.groupingExpressions.map(replace(_, results)),
        aggregateExpressions =
          aggregate.aggregateExpressions.map(replace(_, results).asInstanceOf[NamedExpression]),
        child = child)

    case join: Join =>
      extractFromJoin(join)

    case unary: UnaryNode if predictsIn(unary.expressions).forall(_.references.subsetOf(unary.child.outputSet)) =>
      val (child, results) = pushBelow(predictsIn(unary.expressions), unary.child)
      val rewritten = unary.withNewChildren(Seq(child)).transformExpressionsUp {
        case p: ModelInvocation if results.contains(p.canonicalized) => results(p.canonicalized)
      }
      if (rewritten.output == unary.output) rewritten else Project(unary.output, rewritten)

    case other =>
      throw Errors.analysis(
        s"predict() cannot be used inside ${other.nodeName} (${other.simpleString(200)}). " +
          "Compute it in a subquery or CTE first, then use its result column")
  }

  /**
   * Adds one BatchPredict per distinct call, innermost calls first (a call whose argument is
   * another call runs after it). Calls that a BatchPredict below already computes are reused.
   */
  private def pushBelow(
      predictions: Seq[ModelInvocation],
      child: LogicalPlan): (LogicalPlan, mutable.Map[Expression, Attribute]) = {
    val results = mutable.LinkedHashMap[Expression, Attribute]()
    val wanted = predictions.flatMap(_.collect { case p: ModelInvocation => p.canonicalized }).toSet
    val exposed = exposeResults(child, wanted)
    exposed.foreach {
      case existing: BatchPredict if exposed.outputSet.contains(existing.result) =>
        results.getOrElseUpdate(existing.prediction.canonicalized, existing.result)
      case _ =>
    }
    var plan = exposed
    var pending: Seq[Expression] = predictions
    var done = false
    while (!done) {
      val rewritten = pending.map(replace(_, results))
      val innermost = rewritten
        .flatMap(_.collect { case p: ModelInvocation if !p.children.exists(hasPredict) => p })
        .filterNot(p => results.contains(p.canonicalized))
      val distinct = mutable.LinkedHashMap[Expression, ModelInvocation]()
      innermost.foreach(p => distinct.getOrElseUpdate(p.canonicalized, p))
      if (distinct.isEmpty) {
        done = true
      } else {
        distinct.foreach { case (key, prediction) =>
          val result = AttributeReference(
            s"${prediction.prettyName}_${prediction.binding.modelName}", prediction.dataType, nullable = true)()
          plan = BatchPredict(prediction, result, plan)
          results(key) = result
        }
        pending = rewritten
      }
    }
    (plan, results)
  }

  /**
   * `plan` with the results of the `wanted` calls that a BatchPredict below already computes passed
   * up through the Projects that dropped them, so that a call in WHERE or ORDER BY is reused by the
   * same call in the SELECT list above instead of run again. Only through operators that keep
   * their child's rows and columns (a filter, a sort, a limit, a repartition, an alias), where a
   * row's result is still that row's.
   */
  private def exposeResults(plan: LogicalPlan, wanted: Set[Expression]): LogicalPlan = plan match {
    case project: Project =>
      val child = exposeResults(project.child, wanted)
      val missing = computedResults(child)
        .filter { case (call, result) => wanted.contains(call) && !project.outputSet.contains(result) }
        .values.toSeq.distinct
      if (missing.isEmpty && (child eq project.child)) project
      else project.copy(projectList = project.projectList ++ missing, child = child)
    case keepsRows @ (_: Filter | _: Sort | _: SubqueryAlias | _: GlobalLimit | _: LocalLimit |
        _: Repartition | _: RepartitionByExpression) =>
      val child = exposeResults(keepsRows.children.head, wanted)
      if (child eq keepsRows.children.head) keepsRows else keepsRows.withNewChildren(Seq(child))
    case other => other
  }

  /** The calls that BatchPredicts in `plan` compute, and their result columns in `plan`'s output. */
  private def computedResults(plan: LogicalPlan): Map[Expression, Attribute] = {
    val reachable = mutable.LinkedHashMap[Expression, Attribute]()
    plan.foreach {
      case existing: BatchPredict if plan.outputSet.contains(existing.result) =>
        reachable.getOrElseUpdate(existing.prediction.canonicalized, existing.result)
      case _ =>
    }
    reachable.toMap
  }

  private def replace(expression: Expression, results: mutable.Map[Expression, Attribute]): Expression =
    expression.transformUp {
      case p: ModelInvocation if results.contains(p.canonicalized) => results(p.canonicalized)
    }

  private def belongsToAggregate(expression: Expression, aggregate: Aggregate): Boolean =
    expression.isInstanceOf[AggregateExpression] ||
      aggregate.groupingExpressions.exists(_.semanticEquals(expression))

  /** A call outside any aggregate function, that is not itself a grouping expression. */
  private def hasPredictOverAggregate(aggregate: Aggregate): Boolean =
    aggregate.aggregateExpressions.exists(resultLevelPredicts(_, aggregate).nonEmpty)

  private def resultLevelPredicts(expression: Expression, aggregate: Aggregate): Seq[ModelInvocation] = {
    val found = mutable.ArrayBuffer[ModelInvocation]()
    def visit(e: Expression): Unit = e match {
      case _: AggregateExpression =>
      case p: ModelInvocation if aggregate.groupingExpressions.exists(g => g.exists(_.semanticEquals(p))) =>
      case p: ModelInvocation => found += p
      case other => other.children.foreach(visit)
    }
    visit(expression)
    found.toSeq
  }

  /** Computes the aggregate first and the model calls over its results in a Project above. */
  private def moveAboveAggregate(aggregate: Aggregate): (Seq[NamedExpression], Aggregate) = {
    val projectList = mutable.ArrayBuffer[NamedExpression]()
    val aggregateList = mutable.ArrayBuffer[NamedExpression]()
    aggregate.aggregateExpressions.foreach { expression =>
      if (resultLevelPredicts(expression, aggregate).nonEmpty) {
        val rewritten = expression.transformDown {
          case e if belongsToAggregate(e, aggregate) =>
            val alias = e match {
              case named: NamedExpression => named
              case other => Alias(other, "aggregate")()
            }
            aggregateList += alias
            alias.toAttribute
        }
        projectList += rewritten.asInstanceOf[NamedExpression]
      } else {
        aggregateList += expression
        projectList += expression.toAttribute
      }
    }
    (projectList.toSeq, aggregate.copy(aggregateExpressions = aggregateList.toSeq))
  }

  private def extractFromJoin(join: Join): LogicalPlan = {
    val conjuncts = join.condition.toSeq.flatMap(splitConjunctivePredicates)
    val predictions = predictsIn(conjuncts)
    val left = predictions.filter(_.references.subsetOf(join.left.outputSet))
    val right = predictions.filter(p => !left.contains(p) && p.references.subsetOf(join.right.outputSet))
    val both = predictions.filterNot(p => left.contains(p) || right.contains(p)).map(_.canonicalized).toSet
    val (aboveJoin, inJoin) = conjuncts.partition(_.exists(e => both.contains(e.canonicalized)))
    if (aboveJoin.nonEmpty && join.joinType != Inner && join.joinType != Cross) {
      throw Errors.analysis(
        s"predict() in the condition of a ${join.joinType.sql} join cannot use columns of both sides: " +
          s"${aboveJoin.map(_.sql).mkString(" AND ")}. Compute it in a subquery over an inner join, or" +
          " call the model on one side only")
    }
    val (newLeft, leftResults) = pushBelow(left, join.left)
    val (newRight, rightResults) = pushBelow(right, join.right)
    val results = leftResults ++ rightResults
    val condition = inJoin.map(replace(_, results)).reduceOption(And)
    val newJoin = join.copy(left = newLeft, right = newRight, condition = condition)
    val withFilter = aboveJoin.reduceOption(And) match {
      case Some(predicate) => extract(Filter(predicate, newJoin))
      case None => newJoin
    }
    Project(join.output, withFilter)
  }

  private def splitConjunctivePredicates(condition: Expression): Seq[Expression] = condition match {
    case And(left, right) => splitConjunctivePredicates(left) ++ splitConjunctivePredicates(right)
    case other => Seq(other)
  }
}
