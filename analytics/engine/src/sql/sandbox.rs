//! The read-only SQL sandbox: a client's SQL may read views and nothing else. Only queries
//! (SELECT, WITH, VALUES, EXPLAIN of a query, SHOW) are planned; DDL, DML, `COPY`, `SET` and
//! external tables are refused before planning, and again on the plan by DataFusion's
//! `SQLOptions`. No file or URL table is registered, so a path in FROM is just an unknown table.
//! The SQL size and expression nesting are bounded so a query can't exhaust planning's stack.

use super::error::QueryError;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Expr, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::parser::ParserError;
use std::ops::ControlFlow;
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Longest SQL text accepted, in bytes.
    pub max_sql_bytes: usize,
    /// Deepest nesting of expressions accepted (`1+1+…+1` with n terms nests n deep).
    pub max_expression_depth: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        // ClickHouse's max_ast_depth default; 256 KiB holds any hand-written or generated query.
        Self { max_sql_bytes: 256 * 1024, max_expression_depth: 1000 }
    }
}

/// Parses, checks and plans `sql` as a read-only query in `ctx`. Run it on a thread with a large
/// stack: planning recurses over the expression tree.
pub async fn plan_read_only(ctx: &SessionContext, sql: &str, limits: &SqlLimits) -> Result<DataFrame, QueryError> {
    if sql.len() > limits.max_sql_bytes {
        return Err(QueryError::invalid(format!("SQL text is {} bytes, more than the limit of {} bytes", sql.len(), limits.max_sql_bytes)));
    }
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect).map_err(|e| match e {
        DataFusionError::SQL(p, _) if matches!(*p, ParserError::RecursionLimitExceeded) => QueryError::invalid(format!(
            "SQL nested too deeply: more than {} levels of parentheses, subqueries, function calls or unary operators",
            state.config().options().sql_parser.recursion_limit
        )),
        e => QueryError::from(e),
    })?;
    // Depth first: showing a refused statement's kind formats it, which recurses over it.
    check_depth(&statement, limits.max_expression_depth)?;
    check_read_only(&statement)?;
    let plan = state.statement_to_plan(statement).await?;
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    options.verify_plan(&plan).map_err(|e| QueryError::invalid(format!("only queries are allowed: {e}")))?;
    Ok(ctx.execute_logical_plan(plan).await?)
}

fn refused(what: &str) -> QueryError {
    QueryError::invalid(format!("only queries are allowed (SELECT, WITH, VALUES, EXPLAIN, SHOW): {what} is refused"))
}

fn check_read_only(statement: &DFStatement) -> Result<(), QueryError> {
    match statement {
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_) | Statement::ShowTables { .. } | Statement::ShowColumns { .. } | Statement::ShowVariable { .. } | Statement::ShowFunctions { .. } => Ok(()),
            Statement::Explain { statement, .. } => match statement.as_ref() {
                Statement::Query(_) => Ok(()),
                _ => Err(refused("EXPLAIN of a statement other than a query")),
            },
            other => Err(refused(&statement_kind(other))),
        },
        DFStatement::Explain(e) => check_read_only(&e.statement),
        DFStatement::CreateExternalTable(_) => Err(refused("CREATE EXTERNAL TABLE")),
        DFStatement::CopyTo(_) => Err(refused("COPY")),
        DFStatement::Reset(_) => Err(refused("RESET")),
    }
}

/// The statement's leading keywords (`CREATE TABLE`, `INSERT`…), without any of its text.
fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic())).take(2).collect();
    if words.is_empty() {
        "this statement".to_string()
    } else {
        words.join(" ").to_uppercase()
    }
}

/// Fails when expressions nest deeper than `limit` (subqueries and parentheses are bounded by the
/// parser's recursion limit). The walk stops at the limit, so it never recurses deeper itself.
fn check_depth(statement: &DFStatement, limit: usize) -> Result<(), QueryError> {
    struct Depth {
        current: usize,
        limit: usize,
    }
    impl Depth {
        fn enter(&mut self) -> ControlFlow<()> {
            self.current += 1;
            if self.current > self.limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn leave(&mut self) -> ControlFlow<()> {
            self.current -= 1;
            ControlFlow::Continue(())
        }
    }
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.enter()
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.leave()
        }
    }
    let statement = match statement {
        DFStatement::Statement(s) => s.as_ref(),
        DFStatement::Explain(e) => return check_depth(&e.statement, limit),
        _ => return Ok(()),
    };
    let mut depth = Depth { current: 0, limit };
    match statement.visit(&mut depth) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(QueryError::invalid(format!(
            "expressions nest more than {limit} levels deep (long chains of operators such as a+b+… or OR count one level per operator): simplify the query, e.g. with IN (…)"
        ))),
    }
}

/// Wraps every operator of `plan` so that each batch it hands out spends the task's cooperative
/// budget: a loop inside an operator (an aggregate over a cross join…) then yields to tokio
/// regularly, which is what lets a timeout or an abort stop it.
pub fn cooperative(plan: Arc<dyn ExecutionPlan>) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if node.is::<CooperativeExec>() {
            return Ok(Transformed::no(node));
        }
        Ok(Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>))
    })
    .map(|t| t.data)
}
