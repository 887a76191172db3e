//! `view_instance('<view>', '<id>')`: a process- or stream-scoped instance of a view.

use super::view_table::{BatchSource, ViewTable};
use crate::time::TimeRange;
use crate::views::View;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use std::sync::Arc;

#[derive(Debug)]
pub struct ViewInstanceFunction {
    views: Vec<Arc<dyn View>>,
    range: Option<TimeRange>,
    source: Arc<dyn BatchSource>,
}

impl ViewInstanceFunction {
    pub fn new(views: Vec<Arc<dyn View>>, range: Option<TimeRange>, source: Arc<dyn BatchSource>) -> Self {
        Self { views, range, source }
    }
}

fn text_arg(args: &[Expr], i: usize, what: &str) -> Result<String> {
    match args.get(i) {
        Some(Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _)) => {
            Ok(s.clone())
        }
        _ => Err(DataFusionError::Plan(format!("view_instance: argument {} ({what}) must be a string literal", i + 1))),
    }
}

impl TableFunctionImpl for ViewInstanceFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 2 {
            return Err(DataFusionError::Plan(format!("view_instance takes 2 arguments (view, id), got {}", exprs.len())));
        }
        let name = text_arg(exprs, 0, "view name")?;
        let id = text_arg(exprs, 1, "instance id")?;
        let view = self.views.iter().find(|v| v.name() == name).ok_or_else(|| {
            let known: Vec<_> = self.views.iter().map(|v| v.name()).collect();
            DataFusionError::Plan(format!("view_instance: unknown view '{name}' (known: {})", known.join(", ")))
        })?;
        let instance = view.instance(&id).map_err(|e| DataFusionError::Plan(format!("{e:#}")))?;
        Ok(Arc::new(ViewTable::new(view.clone(), instance, self.range, self.source.clone())))
    }
}
