//! Upstream's histogram functions, same names, column types and meaning:
//! - `make_histogram(start, end, bins, value)` and `sum_histograms(histogram)` aggregates;
//! - `quantile_from_histogram(h, q)`, `variance_from_histogram(h)`, `count_from_histogram(h)`,
//!   `sum_from_histogram(h)` scalars;
//! - `expand_histogram(<histogram or scalar subquery>)`, one row per bin: `bin_center`, `count`.
//!
//! A histogram is the struct `{start, end, min, max, sum, sum_sq: Float64, count: UInt64,
//! bins: List<UInt64>}`: equal-width bins over `[start, end]`; values outside it are counted in the
//! first or last bin (and in min/max/sum/count), as upstream does.
//!
//! Where upstream has no answer for hostile input we give a clear error: at most [`MAX_BINS`]
//! bins (a bin count is client input and sizes an allocation per group), a quantile outside
//! [0, 1], bounds that change within a group, a subquery returning more than one histogram.

use super::sandbox::cooperative;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, RecordBatch, StructArray, UInt64Array};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type, Int64Type, Schema, SchemaRef, UInt64Type};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    create_udaf, Accumulator, AggregateUDF, ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::physical_plan::expressions::Literal;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::sync::Arc;

/// Most bins a histogram may have: enough for any chart, small enough that a GROUP BY with a
/// histogram per group cannot allocate without bound before the memory limit sees it.
pub const MAX_BINS: i64 = 10_000;

/// Registers every histogram function in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(make_histogram_udaf());
    ctx.register_udaf(sum_histograms_udaf());
    for stat in [Stat::Quantile, Stat::Variance, Stat::Count, Stat::Sum] {
        ctx.register_udf(ScalarUDF::from(HistogramStat::new(stat)));
    }
    ctx.register_udtf("expand_histogram", Arc::new(ExpandHistogram));
}

fn bin_field() -> Arc<Field> {
    Arc::new(Field::new("bin", DataType::UInt64, false))
}

fn histogram_fields() -> Fields {
    Fields::from(vec![
        Field::new("start", DataType::Float64, false),
        Field::new("end", DataType::Float64, false),
        Field::new("min", DataType::Float64, false),
        Field::new("max", DataType::Float64, false),
        Field::new("sum", DataType::Float64, false),
        Field::new("sum_sq", DataType::Float64, false),
        Field::new("count", DataType::UInt64, false),
        Field::new("bins", DataType::List(bin_field()), false),
    ])
}

/// The histogram struct type (upstream's `make_histogram_arrow_type`).
pub fn histogram_type() -> DataType {
    DataType::Struct(histogram_fields())
}

fn exec_err(message: String) -> DataFusionError {
    DataFusionError::Execution(message)
}

/// The columns of a histogram struct array, checked once.
struct Histograms<'a> {
    array: &'a StructArray,
    start: &'a Float64Array,
    end: &'a Float64Array,
    min: &'a Float64Array,
    max: &'a Float64Array,
    sum: &'a Float64Array,
    sum_sq: &'a Float64Array,
    count: &'a UInt64Array,
    bins: &'a ListArray,
    bin_values: &'a UInt64Array,
}

impl<'a> Histograms<'a> {
    fn new(array: &'a dyn Array, what: &str) -> Result<Self> {
        let not_histogram = || exec_err(format!("{what}: expected a histogram (from make_histogram or sum_histograms), got {}", array.data_type()));
        let array = array.as_struct_opt().ok_or_else(not_histogram)?;
        let f64_column = |name: &str| array.column_by_name(name).and_then(|c| c.as_primitive_opt::<Float64Type>()).ok_or_else(not_histogram);
        let bins = array.column_by_name("bins").and_then(|c| c.as_list_opt::<i32>()).ok_or_else(not_histogram)?;
        Ok(Self {
            array,
            start: f64_column("start")?,
            end: f64_column("end")?,
            min: f64_column("min")?,
            max: f64_column("max")?,
            sum: f64_column("sum")?,
            sum_sq: f64_column("sum_sq")?,
            count: array.column_by_name("count").and_then(|c| c.as_primitive_opt::<UInt64Type>()).ok_or_else(not_histogram)?,
            bins,
            bin_values: bins.values().as_primitive_opt::<UInt64Type>().ok_or_else(not_histogram)?,
        })
    }

    fn len(&self) -> usize {
        self.array.len()
    }

    fn is_null(&self, i: usize) -> bool {
        self.array.is_null(i)
    }

    fn bins(&self, i: usize) -> &'a [u64] {
        let offsets = self.bins.value_offsets();
        &self.bin_values.values()[offsets[i] as usize..offsets[i + 1] as usize]
    }
}

/// What fixes a histogram's bins.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    start: f64,
    end: f64,
    bins: usize,
}

impl Bounds {
    /// `make_histogram`'s parameters, checked (upstream's checks, plus the bin cap).
    fn checked(start: f64, end: f64, bins: i64) -> Result<Self> {
        if !(1..=MAX_BINS).contains(&bins) {
            return Err(exec_err(format!("make_histogram: bins must be between 1 and {MAX_BINS}, got {bins}")));
        }
        if !start.is_finite() || !end.is_finite() {
            return Err(exec_err(format!("make_histogram: start and end must be finite numbers, got {start} and {end}")));
        }
        if start > end {
            return Err(exec_err(format!("make_histogram: start ({start}) must be <= end ({end})")));
        }
        Ok(Self { start, end, bins: bins as usize })
    }
}

impl std::fmt::Display for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}] in {} bins", self.start, self.end, self.bins)
    }
}

/// The state of `make_histogram` and `sum_histograms`: unconfigured (a NULL histogram) until
/// its bounds are known from literal parameters, the first row, or the first histogram merged.
#[derive(Debug)]
struct HistogramAccumulator {
    bounds: Option<Bounds>,
    min: f64,
    max: f64,
    sum: f64,
    sum_sq: f64,
    count: u64,
    bins: Vec<u64>,
}

impl HistogramAccumulator {
    fn new(bounds: Option<Bounds>) -> Self {
        let mut acc = Self { bounds: None, min: f64::MAX, max: f64::MIN, sum: 0.0, sum_sq: 0.0, count: 0, bins: Vec::new() };
        if let Some(b) = bounds {
            acc.configure(b);
        }
        acc
    }

    fn configure(&mut self, bounds: Bounds) {
        self.bounds = Some(bounds);
        self.bins = vec![0; bounds.bins];
    }

    /// `make_histogram`'s rows: `[start, end, bins, value]`, parameters the same on every row.
    fn record(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [starts, ends, bin_counts, scalars] = values else {
            return Err(exec_err(format!("make_histogram takes 4 arguments (start, end, bins, value), got {}", values.len())));
        };
        if scalars.is_empty() {
            return Ok(());
        }
        for (name, a) in [("start", starts), ("end", ends), ("bins", bin_counts)] {
            if a.null_count() > 0 {
                return Err(exec_err(format!("make_histogram: the {name} argument is NULL")));
            }
        }
        let (starts, ends) = (f64_values(starts, "start")?.values(), f64_values(ends, "end")?.values());
        let bin_counts = bin_counts.as_primitive_opt::<Int64Type>().ok_or_else(|| exec_err(format!("make_histogram: bins must be Int64, got {}", bin_counts.data_type())))?.values();
        let bounds = match self.bounds {
            Some(b) => b,
            None => {
                let b = Bounds::checked(starts[0], ends[0], bin_counts[0])?;
                self.configure(b);
                b
            }
        };
        for i in 0..scalars.len() {
            if starts[i] != bounds.start || ends[i] != bounds.end || bin_counts[i] != bounds.bins as i64 {
                return Err(exec_err(format!(
                    "make_histogram: start, end and bins must be the same for all rows of a histogram: {bounds}, then [{}, {}] in {} bins",
                    starts[i], ends[i], bin_counts[i]
                )));
            }
        }
        let width = (bounds.end - bounds.start) / bounds.bins as f64;
        let last = bounds.bins - 1;
        let scalars = f64_values(scalars, "value")?;
        for v in scalars.iter().flatten() {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.sum += v;
            self.sum_sq += v * v;
            self.count += 1;
            // `as usize` saturates (negative and NaN give 0): out-of-range values land in the
            // first or last bin, like upstream's clamp.
            let bin = (((v - bounds.start) / width).floor() as usize).min(last);
            self.bins[bin] += 1;
        }
        Ok(())
    }

    /// Adds histograms bin by bin; all must have the bounds of the first.
    fn merge(&mut self, array: &dyn Array, what: &str) -> Result<()> {
        let h = Histograms::new(array, what)?;
        for i in 0..h.len() {
            if h.is_null(i) {
                continue;
            }
            let bins = h.bins(i);
            let theirs = Bounds { start: h.start.value(i), end: h.end.value(i), bins: bins.len() };
            let ours = match self.bounds {
                Some(b) => b,
                None => {
                    self.configure(theirs);
                    theirs
                }
            };
            if ours != theirs {
                return Err(exec_err(format!("{what}: incompatible histograms: {ours} and {theirs} (only histograms with the same start, end and bins add up)")));
            }
            self.min = self.min.min(h.min.value(i));
            self.max = self.max.max(h.max.value(i));
            self.sum += h.sum.value(i);
            self.sum_sq += h.sum_sq.value(i);
            self.count = self.count.saturating_add(h.count.value(i));
            for (mine, theirs) in self.bins.iter_mut().zip(bins) {
                *mine = mine.saturating_add(*theirs);
            }
        }
        Ok(())
    }

    fn to_array(&self) -> Result<StructArray> {
        let f64_column = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
        let bins = ListArray::try_new(bin_field(), OffsetBuffer::from_lengths([self.bins.len()]), Arc::new(UInt64Array::from(self.bins.clone())), None)?;
        let b = self.bounds;
        let columns = vec![
            f64_column(b.map_or(0.0, |b| b.start)),
            f64_column(b.map_or(0.0, |b| b.end)),
            f64_column(self.min),
            f64_column(self.max),
            f64_column(self.sum),
            f64_column(self.sum_sq),
            Arc::new(UInt64Array::from(vec![self.count])),
            Arc::new(bins),
        ];
        let nulls = b.is_none().then(|| NullBuffer::new_null(1));
        Ok(StructArray::try_new(histogram_fields(), columns, nulls)?)
    }
}

impl Accumulator for HistogramAccumulator {
    /// `make_histogram` gets its 4 arguments, `sum_histograms` its histograms.
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values {
            [histograms] => self.merge(histograms.as_ref(), "sum_histograms"),
            _ => self.record(values),
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Struct(Arc::new(self.to_array()?)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bins.capacity() * std::mem::size_of::<u64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        states.iter().try_for_each(|s| self.merge(s.as_ref(), "merging histograms"))
    }
}

fn f64_values<'a>(a: &'a ArrayRef, name: &str) -> Result<&'a Float64Array> {
    a.as_primitive_opt::<Float64Type>().ok_or_else(|| exec_err(format!("make_histogram: {name} must be Float64, got {}", a.data_type())))
}

fn literal(args: &AccumulatorArgs, i: usize) -> Option<ScalarValue> {
    args.exprs.get(i)?.downcast_ref::<Literal>().map(|l| l.value().clone())
}

/// Literal parameters configure the histogram up front, so an empty group still gives one with
/// its bounds and zero counts (as upstream).
fn make_histogram_accumulator(args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
    let bounds = match (literal(&args, 0), literal(&args, 1), literal(&args, 2)) {
        (Some(ScalarValue::Float64(Some(start))), Some(ScalarValue::Float64(Some(end))), Some(ScalarValue::Int64(Some(bins)))) => {
            Some(Bounds::checked(start, end, bins)?)
        }
        _ => None,
    };
    Ok(Box::new(HistogramAccumulator::new(bounds)))
}

fn make_histogram_udaf() -> AggregateUDF {
    create_udaf(
        "make_histogram",
        vec![DataType::Float64, DataType::Float64, DataType::Int64, DataType::Float64],
        Arc::new(histogram_type()),
        Volatility::Immutable,
        Arc::new(make_histogram_accumulator),
        Arc::new(vec![histogram_type()]),
    )
}

fn sum_histograms_udaf() -> AggregateUDF {
    create_udaf(
        "sum_histograms",
        vec![histogram_type()],
        Arc::new(histogram_type()),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(HistogramAccumulator::new(None)))),
        Arc::new(vec![histogram_type()]),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Stat {
    Quantile,
    Variance,
    Count,
    Sum,
}

/// The scalar functions reading one histogram per row; NULL for a NULL histogram.
#[derive(Debug, PartialEq, Eq, Hash)]
struct HistogramStat {
    stat: Stat,
    signature: Signature,
}

impl HistogramStat {
    fn new(stat: Stat) -> Self {
        let args = match stat {
            Stat::Quantile => vec![histogram_type(), DataType::Float64],
            _ => vec![histogram_type()],
        };
        Self { stat, signature: Signature::exact(args, Volatility::Immutable) }
    }
}

/// Upstream's estimate: the bin where the running count reaches `q * count`, interpolated
/// linearly between that bin's edges; `end` when no bin reaches it (an empty histogram).
fn quantile(q: f64, start: f64, end: f64, count: u64, bins: &[u64]) -> f64 {
    let target = count as f64 * q;
    let width = (end - start) / bins.len() as f64;
    let mut seen = 0u64;
    for (i, &n) in bins.iter().enumerate() {
        seen = seen.saturating_add(n);
        if n > 0 && seen as f64 >= target {
            let before = (seen - n) as f64;
            let ratio = (target - before) / n as f64;
            let (lo, hi) = (start + i as f64 * width, start + (i as f64 + 1.0) * width);
            return (1.0 - ratio) * lo + ratio * hi;
        }
    }
    end
}

/// Sample variance from the moments: `(sum_sq/n - mean²) · n/(n-1)`; NULL below two values
/// (upstream gives NaN there, which JSON shows as null too).
fn variance(count: u64, sum: f64, sum_sq: f64) -> Option<f64> {
    if count < 2 {
        return None;
    }
    let n = count as f64;
    let mean = sum / n;
    Some((sum_sq / n - mean * mean) * (n / (n - 1.0)))
}

impl ScalarUDFImpl for HistogramStat {
    fn name(&self) -> &str {
        match self.stat {
            Stat::Quantile => "quantile_from_histogram",
            Stat::Variance => "variance_from_histogram",
            Stat::Count => "count_from_histogram",
            Stat::Sum => "sum_from_histogram",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.stat {
            Stat::Count => DataType::UInt64,
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let array = args.args[0].to_array(rows)?;
        let h = Histograms::new(array.as_ref(), self.name())?;
        let valid = |i: usize| !h.is_null(i);
        let out: ArrayRef = match self.stat {
            Stat::Count => Arc::new((0..rows).map(|i| valid(i).then(|| h.count.value(i))).collect::<UInt64Array>()),
            Stat::Sum => Arc::new((0..rows).map(|i| valid(i).then(|| h.sum.value(i))).collect::<Float64Array>()),
            Stat::Variance => Arc::new((0..rows).map(|i| valid(i).then(|| variance(h.count.value(i), h.sum.value(i), h.sum_sq.value(i))).flatten()).collect::<Float64Array>()),
            Stat::Quantile => {
                let qs = args.args[1].to_array(rows)?;
                let qs = qs.as_primitive_opt::<Float64Type>().ok_or_else(|| exec_err(format!("quantile_from_histogram: the quantile must be Float64, got {}", qs.data_type())))?;
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    if !valid(i) || qs.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let q = qs.value(i);
                    if !(0.0..=1.0).contains(&q) {
                        return Err(exec_err(format!("quantile_from_histogram: the quantile must be between 0 and 1, got {q}")));
                    }
                    out.push(Some(quantile(q, h.start.value(i), h.end.value(i), h.count.value(i), h.bins(i))));
                }
                Arc::new(Float64Array::from(out))
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `expand_histogram(h)`: `h` is a histogram literal, a scalar subquery returning one histogram
/// (upstream's documented form, `expand_histogram((SELECT make_histogram(...) FROM ...))`), or
/// any expression without columns.
#[derive(Debug)]
struct ExpandHistogram;

impl TableFunctionImpl for ExpandHistogram {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let [arg] = args.exprs() else {
            return Err(DataFusionError::Plan(format!(
                "expand_histogram takes one argument, a histogram or a subquery returning one, e.g. expand_histogram((SELECT make_histogram(0.0, 100.0, 10, value) FROM measures)); got {} arguments",
                args.exprs().len()
            )));
        };
        let plan = match arg {
            Expr::ScalarSubquery(sq) => sq.subquery.clone(),
            other => Arc::new(LogicalPlanBuilder::empty(true).project(vec![other.clone()])?.build()?),
        };
        Ok(Arc::new(ExpandedHistogram { plan }))
    }
}

fn expanded_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("bin_center", DataType::Float64, false), Field::new("count", DataType::UInt64, false)]))
}

#[derive(Debug)]
struct ExpandedHistogram {
    /// Computes the histogram: run when the table is scanned, in the query's session.
    plan: Arc<LogicalPlan>,
}

impl ExpandedHistogram {
    /// The one histogram the argument gives (`None` when it is NULL).
    async fn histogram(&self, state: &dyn Session) -> Result<Option<ArrayRef>> {
        let plan = cooperative(state.create_physical_plan(&self.plan).await?)?;
        let mut batches = datafusion::physical_plan::execute_stream(plan, state.task_ctx())?;
        let mut found: Option<ArrayRef> = None;
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            if batch.num_columns() != 1 {
                return Err(exec_err(format!("expand_histogram: the subquery must return one column (a histogram), got {}", batch.num_columns())));
            }
            if found.is_some() || batch.num_rows() > 1 {
                return Err(exec_err(
                    "expand_histogram: the subquery returned more than one row; it must return one histogram (an aggregate without GROUP BY, or filter to one group)".into(),
                ));
            }
            found = Some(batch.column(0).clone());
        }
        let array = found.ok_or_else(|| exec_err("expand_histogram: the subquery returned no rows".into()))?;
        let array = match array.data_type() {
            // A dictionary-encoded histogram (upstream accepts those too).
            DataType::Dictionary(_, _) => datafusion::arrow::compute::cast(&array, array.as_any_dictionary().values().data_type())?,
            _ => array,
        };
        Ok((!array.is_null(0)).then_some(array))
    }
}

/// Upstream's rows: one per bin, centred in it; a zero-width histogram gets unit-width bins.
fn expand(array: &dyn Array) -> Result<RecordBatch> {
    let h = Histograms::new(array, "expand_histogram")?;
    let (start, end, bins) = (h.start.value(0), h.end.value(0), h.bins(0));
    let width = if (end - start).abs() < f64::EPSILON { 1.0 } else { (end - start) / bins.len() as f64 };
    let centers: Float64Array = (0..bins.len()).map(|i| start + (i as f64 + 0.5) * width).collect();
    Ok(RecordBatch::try_new(expanded_schema(), vec![Arc::new(centers), Arc::new(UInt64Array::from(bins.to_vec()))])?)
}

#[async_trait::async_trait]
impl TableProvider for ExpandedHistogram {
    fn schema(&self) -> SchemaRef {
        expanded_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let mut batch = match self.histogram(state).await? {
            Some(array) => expand(array.as_ref())?,
            None => RecordBatch::new_empty(expanded_schema()),
        };
        if let Some(n) = limit {
            batch = batch.slice(0, n.min(batch.num_rows()));
        }
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], expanded_schema(), projection.cloned())?)
    }
}
