//! The part of a query's filters a view can test while it decodes: `column = 'text'` and
//! `column IN ('a', 'b')` on text columns, comparisons of integer columns with constants. Rows it
//! rejects are never built. It only ever narrows: DataFusion still applies every filter to the
//! rows that are built, so a filter it does not understand is simply not used.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct RowFilter {
    /// Text columns and the values they may hold.
    texts: Vec<(String, Vec<String>)>,
    /// Integer columns and their inclusive bounds.
    ints: Vec<(String, i64, i64)>,
}

/// One text column's test, resolved once per build.
#[derive(Clone, Copy)]
pub struct TextTest<'a>(Option<&'a [String]>);

impl TextTest<'_> {
    /// Whether it can reject anything.
    pub fn active(&self) -> bool {
        self.0.is_some()
    }

    #[inline]
    pub fn pass(&self, v: &str) -> bool {
        self.0.is_none_or(|allowed| allowed.iter().any(|a| a == v))
    }
}

/// One integer column's test, resolved once per build.
#[derive(Clone, Copy)]
pub struct IntTest(i64, i64);

impl IntTest {
    #[inline]
    pub fn pass(&self, v: i64) -> bool {
        (self.0..=self.1).contains(&v)
    }
}

impl RowFilter {
    /// Keeps every row.
    pub const NONE: RowFilter = RowFilter { texts: Vec::new(), ints: Vec::new() };

    /// What can be tested of `filters` (conjuncts, as DataFusion pushes them to a table).
    pub fn from_exprs(filters: &[Expr]) -> Self {
        let mut f = RowFilter::default();
        for e in filters {
            f.add(e);
        }
        f
    }

    /// Only the tests on `columns`.
    pub fn on(mut self, columns: &[&str]) -> Self {
        self.texts.retain(|(c, _)| columns.contains(&c.as_str()));
        self.ints.retain(|(c, ..)| columns.contains(&c.as_str()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty() && self.ints.is_empty()
    }

    pub fn text(&self, column: &str) -> TextTest<'_> {
        TextTest(self.texts.iter().find(|(c, _)| c == column).map(|(_, v)| v.as_slice()))
    }

    pub fn int(&self, column: &str) -> IntTest {
        self.ints.iter().filter(|(c, ..)| c == column).fold(IntTest(i64::MIN, i64::MAX), |t, (_, lo, hi)| IntTest(t.0.max(*lo), t.1.min(*hi)))
    }

    fn add(&mut self, e: &Expr) {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
                self.add(left);
                self.add(right);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column, op, value) = match (column_of(left), column_of(right)) {
                    (Some(c), None) => (c, *op, literal_of(right)),
                    (None, Some(c)) => match op.swap() {
                        Some(op) => (c, op, literal_of(left)),
                        None => return,
                    },
                    _ => return,
                };
                match (value, op) {
                    (Some(Lit::Text(s)), Operator::Eq) if column.text => self.texts.push((column.name, vec![s])),
                    (Some(Lit::Int(v)), op) if column.int => {
                        let bounds = match op {
                            Operator::Eq => (v, v),
                            Operator::Lt => (i64::MIN, v.saturating_sub(1)),
                            Operator::LtEq => (i64::MIN, v),
                            Operator::Gt => (v.saturating_add(1), i64::MAX),
                            Operator::GtEq => (v, i64::MAX),
                            _ => return,
                        };
                        self.ints.push((column.name, bounds.0, bounds.1));
                    }
                    _ => {}
                }
            }
            Expr::InList(l) if !l.negated => {
                let Some(column) = column_of(&l.expr).filter(|c| c.text) else { return };
                let values: Option<Vec<String>> = l.list.iter().map(|v| match literal_of(v) {
                    Some(Lit::Text(s)) => Some(s),
                    _ => None,
                }).collect();
                if let Some(values) = values {
                    self.texts.push((column.name, values));
                }
            }
            _ => {}
        }
    }
}

/// A column, seen through casts that keep its values' meaning (to another text type for text,
/// to a wider integer for integers).
struct ColumnRef {
    name: String,
    text: bool,
    int: bool,
}

fn column_of(e: &Expr) -> Option<ColumnRef> {
    use datafusion::arrow::datatypes::DataType as T;
    match e {
        Expr::Column(c) => Some(ColumnRef { name: c.name.clone(), text: true, int: true }),
        Expr::Cast(c) => {
            let inner = column_of(&c.expr)?;
            let to = c.field.data_type();
            let text = matches!(to, T::Utf8 | T::LargeUtf8 | T::Utf8View)
                || matches!(to, T::Dictionary(_, v) if matches!(**v, T::Utf8 | T::LargeUtf8 | T::Utf8View));
            let int = matches!(to, T::Int32 | T::Int64);
            Some(ColumnRef { name: inner.name, text: text && inner.text, int: int && inner.int })
        }
        _ => None,
    }
}

enum Lit {
    Text(String),
    Int(i64),
}

fn literal_of(e: &Expr) -> Option<Lit> {
    match e {
        Expr::Literal(v, _) => scalar(v),
        Expr::Cast(c) => literal_of(&c.expr),
        _ => None,
    }
}

fn scalar(v: &ScalarValue) -> Option<Lit> {
    use ScalarValue as S;
    Some(match v {
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) => Lit::Text(s.clone()),
        S::Dictionary(_, inner) => return scalar(inner),
        S::Int8(Some(v)) => Lit::Int(*v as i64),
        S::Int16(Some(v)) => Lit::Int(*v as i64),
        S::Int32(Some(v)) => Lit::Int(*v as i64),
        S::Int64(Some(v)) => Lit::Int(*v),
        S::UInt8(Some(v)) => Lit::Int(*v as i64),
        S::UInt16(Some(v)) => Lit::Int(*v as i64),
        S::UInt32(Some(v)) => Lit::Int(*v as i64),
        S::UInt64(Some(v)) => Lit::Int(i64::try_from(*v).ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{cast, col, lit};

    #[test]
    fn tests_what_it_understands_and_passes_the_rest() {
        let f = RowFilter::from_exprs(&[
            cast(col("name"), DataType::Utf8).eq(lit("frame_time")),
            lit(3).gt_eq(col("level")).and(col("level").gt(lit(1i64))),
            col("target").in_list(vec![lit("a"), lit("b")], false),
            col("unit").not_eq(lit("ms")),
            cast(col("value"), DataType::Int8).eq(lit(1)),
        ]);
        assert!(f.text("name").pass("frame_time") && !f.text("name").pass("gpu_time"));
        let level = f.int("level");
        assert_eq!((level.pass(1), level.pass(2), level.pass(3), level.pass(4)), (false, true, true, false));
        assert!(f.text("target").pass("b") && !f.text("target").pass("c"));
        assert!(f.text("unit").pass("ms"), "!= is not tested");
        assert!(f.int("value").pass(7), "a narrowing cast is not tested");
        assert!(RowFilter::from_exprs(&[col("a").eq(col("b"))]).is_empty());
        let only_level = f.clone().on(&["level"]);
        assert!(only_level.text("name").pass("gpu_time") && !only_level.int("level").pass(4));
        assert!(f.on(&["exe"]).is_empty());
    }
}
