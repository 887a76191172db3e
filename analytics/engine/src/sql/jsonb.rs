//! Upstream's JSONB functions, over databend's binary JSONB (the `jsonb` crate, as upstream uses
//! it, so values are byte for byte upstream's): `jsonb_parse`, `jsonb_get`, `jsonb_format_json`,
//! `jsonb_as_string`/`_f64`/`_i64`, `jsonb_array_length`, `jsonb_object_keys`,
//! `jsonb_path_query_first`, `jsonb_path_query`, and the table functions `jsonb_each` and
//! `jsonb_array_elements`. Return types are upstream's (Dict<Binary>, Dict<Utf8>, Float64, …).
//!
//! Every byte may be hostile. The crate's parser and readers recurse once per nesting level and
//! trust the binary layout (they read strings without UTF-8 checks), so JSON text is parsed only
//! once its depth is known to be bounded, and binary input is walked iteratively (bounds, UTF-8,
//! depth) before the crate sees it.

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryDictionaryBuilder, DictionaryArray, Float64Array, Int32Array, Int64Array, ListBuilder, StringArray,
    StringBuilder, StringDictionaryBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::logical_expr::{ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use jsonb::jsonpath::{parse_json_path, JsonPath};
use jsonb::RawJsonb;
use std::collections::HashMap;
use std::sync::Arc;

/// Deepest nesting of arrays/objects accepted, in text and in binary (serde_json's default
/// recursion limit, which is also what bounds the text check).
pub const MAX_JSONB_DEPTH: usize = 128;
/// Longest JSONPath accepted and the most brackets it may hold: the path parser recurses per
/// nesting level of filters too.
const MAX_PATH_BYTES: usize = 4096;
const MAX_PATH_BRACKETS: usize = 64;

/// Registers every JSONB function in `ctx`.
pub fn register_jsonb_functions(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(JsonbParse::new()));
    for f in [
        JsonbFn::Get,
        JsonbFn::FormatJson,
        JsonbFn::AsString,
        JsonbFn::AsF64,
        JsonbFn::AsI64,
        JsonbFn::ArrayLength,
        JsonbFn::ObjectKeys,
        JsonbFn::PathQueryFirst,
        JsonbFn::PathQuery,
    ] {
        ctx.register_udf(ScalarUDF::from(JsonbUdf::new(f)));
    }
    ctx.register_udtf("jsonb_each", Arc::new(JsonbRowsFunction { kind: Rows::Each }));
    ctx.register_udtf("jsonb_array_elements", Arc::new(JsonbRowsFunction { kind: Rows::ArrayElements }));
}

fn exec_error(msg: String) -> DataFusionError {
    DataFusionError::Execution(msg)
}

fn dict_of(values: DataType) -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(values))
}

// ---------------------------------------------------------------------------------------------
// Hostile-input guards

/// Whether JSON text may go to the crate's (recursive) parser. Standard JSON is recognised by
/// serde_json (which skips values without recursing) and its depth measured exactly by a scan;
/// anything else (the crate's extended syntax, or malformed text) is parsed only with few enough
/// brackets that no reading of it can nest deeper than the limit.
#[derive(Debug)]
enum TextCheck {
    Parse,
    TooDeep,
    /// Not standard JSON, and too many brackets to bound its depth: treated as unparsable (NULL).
    Unbounded,
}

/// Deepest bracket nesting of `text` read with standard JSON strings ("…" with backslash escapes).
fn standard_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn check_text(text: &str) -> TextCheck {
    if standard_depth(text) > MAX_JSONB_DEPTH {
        return TextCheck::TooDeep;
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return TextCheck::Parse;
    }
    let brackets = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if brackets <= MAX_JSONB_DEPTH {
        TextCheck::Parse
    } else {
        TextCheck::Unbounded
    }
}

const HEADER_TYPE_MASK: u32 = 0xE000_0000;
const HEADER_LEN_MASK: u32 = 0x1FFF_FFFF;
const ARRAY_CONTAINER: u32 = 0x8000_0000;
const OBJECT_CONTAINER: u32 = 0x4000_0000;
const SCALAR_CONTAINER: u32 = 0x2000_0000;
const ENTRY_TYPE_MASK: u32 = 0x7000_0000;
const ENTRY_LEN_MASK: u32 = 0x0FFF_FFFF;
const STRING_ENTRY: u32 = 0x1000_0000;
const CONTAINER_ENTRY: u32 = 0x5000_0000;
const EXTENSION_ENTRY: u32 = 0x6000_0000;

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Walks databend JSONB without recursion: every container's header and entries lie inside the
/// value, keys and strings are UTF-8, and nesting stays within [`MAX_JSONB_DEPTH`].
fn check_jsonb(bytes: &[u8]) -> std::result::Result<(), String> {
    let mut pending: Vec<(&[u8], usize)> = vec![(bytes, 1)];
    while let Some((container, depth)) = pending.pop() {
        if depth > MAX_JSONB_DEPTH {
            return Err(format!("nested more than {MAX_JSONB_DEPTH} levels deep"));
        }
        let header = read_u32(container, 0).ok_or("truncated container header")?;
        let count = (header & HEADER_LEN_MASK) as usize;
        let (entries, keys) = match header & HEADER_TYPE_MASK {
            ARRAY_CONTAINER => (count, 0),
            OBJECT_CONTAINER => (count * 2, count),
            // A scalar's header carries no count (the crate writes 0 or 1): one entry either way.
            SCALAR_CONTAINER => (1, 0),
            _ => return Err("bad container header".into()),
        };
        let mut data = 4usize.checked_add(entries.checked_mul(4).ok_or("too many entries")?).ok_or("too many entries")?;
        if data > container.len() {
            return Err("entries overrun the value".into());
        }
        for i in 0..entries {
            let entry = read_u32(container, 4 + 4 * i).ok_or("truncated entry")?;
            let len = (entry & ENTRY_LEN_MASK) as usize;
            let end = data.checked_add(len).filter(|&e| e <= container.len()).ok_or("entry data overruns the value")?;
            let payload = &container[data..end];
            let kind = entry & ENTRY_TYPE_MASK;
            if i < keys && kind != STRING_ENTRY {
                return Err("object key is not a string".into());
            }
            match kind {
                STRING_ENTRY => {
                    std::str::from_utf8(payload).map_err(|_| "string is not UTF-8")?;
                }
                CONTAINER_ENTRY => pending.push((payload, depth + 1)),
                k if k > EXTENSION_ENTRY => return Err("unknown entry type".into()),
                _ => {}
            }
            data = end;
        }
    }
    Ok(())
}

fn checked<'a>(func: &str, bytes: &'a [u8]) -> Result<RawJsonb<'a>> {
    check_jsonb(bytes).map_err(|e| exec_error(format!("{func}: the argument is not valid JSONB ({e})")))?;
    Ok(RawJsonb::new(bytes))
}

fn crate_error(func: &str, e: jsonb::Error) -> DataFusionError {
    exec_error(format!("{func}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Column access

/// A JSONB argument: plain binary rows, or a dictionary whose distinct values are computed once.
enum JsonbColumn {
    Plain(BinaryArray),
    Dict { keys: Int32Array, values: BinaryArray },
    AllNull(usize),
}

impl JsonbColumn {
    fn new(func: &str, array: &ArrayRef) -> Result<Self> {
        match array.data_type() {
            DataType::Null => Ok(Self::AllNull(array.len())),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && matches!(**v, DataType::Binary | DataType::LargeBinary | DataType::BinaryView) => {
                let dict = array.as_dictionary::<Int32Type>();
                let values = cast(dict.values(), &DataType::Binary)?;
                Ok(Self::Dict { keys: dict.keys().clone(), values: values.as_binary::<i32>().clone() })
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                Ok(Self::Plain(cast(array, &DataType::Binary)?.as_binary::<i32>().clone()))
            }
            other => Err(exec_error(format!(
                "{func}: the first argument must be JSONB (Binary or Dictionary(Int32, Binary)), got {other}; parse JSON text with jsonb_parse"
            ))),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Plain(a) => a.len(),
            Self::Dict { keys, .. } => keys.len(),
            Self::AllNull(n) => *n,
        }
    }

    /// Applies `f` to every non-null row (once per distinct dictionary value), in row order.
    fn map<T: Clone>(&self, mut f: impl FnMut(usize, &[u8]) -> Result<Option<T>>) -> Result<Vec<Option<T>>> {
        match self {
            Self::AllNull(n) => Ok(vec![None; *n]),
            Self::Plain(a) => (0..a.len()).map(|i| if a.is_null(i) { Ok(None) } else { f(i, a.value(i)) }).collect(),
            Self::Dict { keys, values } => {
                let mut memo: Vec<Option<Option<T>>> = vec![None; values.len()];
                let mut out = Vec::with_capacity(keys.len());
                for (row, key) in keys.iter().enumerate() {
                    let Some(k) = key.map(|k| k as usize) else {
                        out.push(None);
                        continue;
                    };
                    if k >= values.len() || values.is_null(k) {
                        out.push(None);
                        continue;
                    }
                    if memo[k].is_none() {
                        memo[k] = Some(f(row, values.value(k))?);
                    }
                    out.push(memo[k].clone().flatten());
                }
                Ok(out)
            }
        }
    }
}

/// A text argument (key or path) as Utf8, whatever string type it came as.
fn text_column(func: &str, array: &ArrayRef) -> Result<StringArray> {
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => Ok(cast(array, &DataType::Utf8)?.as_string::<i32>().clone()),
        DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            Ok(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
        }
        other => Err(exec_error(format!("{func}: the second argument must be text, got {other}"))),
    }
}

/// Rows as Dictionary(Int32, Binary): identical values share one dictionary entry.
fn binary_dict(rows: Vec<Option<Vec<u8>>>) -> Result<ArrayRef> {
    let mut b = BinaryDictionaryBuilder::<Int32Type>::new();
    rows.iter().for_each(|r| b.append_option(r.as_deref()));
    Ok(Arc::new(b.finish()))
}

/// Rows as Dictionary(Int32, Utf8), deduplicated the same way.
fn string_dict(rows: Vec<Option<String>>) -> Result<ArrayRef> {
    let mut b = StringDictionaryBuilder::<Int32Type>::new();
    rows.iter().for_each(|r| b.append_option(r.as_deref()));
    Ok(Arc::new(b.finish()))
}

fn keys_dict(rows: Vec<Option<Vec<String>>>) -> Result<ArrayRef> {
    let mut index: HashMap<Vec<String>, i32> = HashMap::new();
    let mut values = ListBuilder::new(StringBuilder::new());
    let keys: Int32Array = rows
        .into_iter()
        .map(|r| {
            r.map(|list| {
                let next = index.len() as i32;
                *index.entry(list).or_insert_with_key(|list| {
                    for k in list {
                        values.values().append_value(k);
                    }
                    values.append(true);
                    next
                })
            })
        })
        .collect();
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values.finish()))?))
}

fn keys_type() -> DataType {
    dict_of(DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))))
}

// ---------------------------------------------------------------------------------------------
// jsonb_parse

/// `jsonb_parse(text) → Dict<Binary>`. Like upstream, text that does not parse gives NULL; text
/// nested deeper than [`MAX_JSONB_DEPTH`] is an error (upstream's parser would overflow its stack).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonbParse {
    signature: Signature,
}

impl JsonbParse {
    pub fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl Default for JsonbParse {
    fn default() -> Self {
        Self::new()
    }
}

fn parse_text(text: &str) -> Result<Option<Vec<u8>>> {
    match check_text(text) {
        TextCheck::TooDeep => Err(exec_error(format!("jsonb_parse: JSON nested more than {MAX_JSONB_DEPTH} levels deep"))),
        TextCheck::Unbounded => Ok(None),
        TextCheck::Parse => Ok(jsonb::parse_value(text.as_bytes()).ok().map(|v| {
            let mut out = Vec::new();
            v.write_to_vec(&mut out);
            out
        })),
    }
}

impl ScalarUDFImpl for JsonbParse {
    fn name(&self) -> &str {
        "jsonb_parse"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(dict_of(DataType::Binary))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = &arrays[0];
        let rows = match input.data_type() {
            DataType::Dictionary(k, v) if **k == DataType::Int32 && matches!(**v, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                let dict = input.as_dictionary::<Int32Type>();
                let values = cast(dict.values(), &DataType::Utf8)?;
                let values = values.as_string::<i32>();
                let mut memo: Vec<Option<Option<Vec<u8>>>> = vec![None; values.len()];
                let mut rows = Vec::with_capacity(dict.len());
                for key in dict.keys().iter() {
                    match key.map(|k| k as usize).filter(|&k| k < values.len() && values.is_valid(k)) {
                        None => rows.push(None),
                        Some(k) => {
                            if memo[k].is_none() {
                                memo[k] = Some(parse_text(values.value(k))?);
                            }
                            rows.push(memo[k].clone().flatten());
                        }
                    }
                }
                rows
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                let text = cast(input, &DataType::Utf8)?;
                text.as_string::<i32>().iter().map(|t| t.map(parse_text).transpose().map(Option::flatten)).collect::<Result<_>>()?
            }
            other => return Err(exec_error(format!("jsonb_parse: the argument must be text (Utf8 or Dictionary(Int32, Utf8)), got {other}"))),
        };
        Ok(ColumnarValue::Array(binary_dict(rows)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar functions over JSONB

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum JsonbFn {
    Get,
    FormatJson,
    AsString,
    AsF64,
    AsI64,
    ArrayLength,
    ObjectKeys,
    PathQueryFirst,
    PathQuery,
}

impl JsonbFn {
    fn name(self) -> &'static str {
        match self {
            Self::Get => "jsonb_get",
            Self::FormatJson => "jsonb_format_json",
            Self::AsString => "jsonb_as_string",
            Self::AsF64 => "jsonb_as_f64",
            Self::AsI64 => "jsonb_as_i64",
            Self::ArrayLength => "jsonb_array_length",
            Self::ObjectKeys => "jsonb_object_keys",
            Self::PathQueryFirst => "jsonb_path_query_first",
            Self::PathQuery => "jsonb_path_query",
        }
    }
    fn arity(self) -> usize {
        match self {
            Self::Get | Self::PathQueryFirst | Self::PathQuery => 2,
            _ => 1,
        }
    }
    fn return_type(self) -> DataType {
        match self {
            Self::Get | Self::PathQueryFirst | Self::PathQuery => dict_of(DataType::Binary),
            Self::FormatJson | Self::AsString => dict_of(DataType::Utf8),
            Self::AsF64 => DataType::Float64,
            Self::AsI64 | Self::ArrayLength => DataType::Int64,
            Self::ObjectKeys => keys_type(),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonbUdf {
    func: JsonbFn,
    signature: Signature,
}

impl JsonbUdf {
    fn new(func: JsonbFn) -> Self {
        Self { func, signature: Signature::any(func.arity(), Volatility::Immutable) }
    }
}

fn parse_path<'a>(func: &str, path: &'a str) -> Result<JsonPath<'a>> {
    let brackets = path.bytes().filter(|b| matches!(b, b'(' | b'[' | b'{')).count();
    if path.len() > MAX_PATH_BYTES || brackets > MAX_PATH_BRACKETS {
        return Err(exec_error(format!(
            "{func}: JSONPath too long or nested too deeply (at most {MAX_PATH_BYTES} bytes and {MAX_PATH_BRACKETS} brackets)"
        )));
    }
    parse_json_path(path.as_bytes()).map_err(|e| exec_error(format!("{func}: invalid JSONPath '{path}': {e}")))
}

fn object_keys(func: &str, raw: RawJsonb) -> Result<Option<Vec<String>>> {
    let Some(keys) = raw.object_keys().map_err(|e| crate_error(func, e))? else {
        return Ok(None);
    };
    let values = keys.as_raw().array_values().map_err(|e| crate_error(func, e))?.unwrap_or_default();
    values
        .iter()
        .map(|v| v.as_raw().as_str().map_err(|e| crate_error(func, e)).map(|s| s.map(|s| s.to_string())))
        .collect::<Result<Option<Vec<String>>>>()
}

impl ScalarUDFImpl for JsonbUdf {
    fn name(&self) -> &str {
        self.func.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.func.return_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.func.name();
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = JsonbColumn::new(name, &arrays[0])?;
        let text = if self.func.arity() == 2 { Some(text_column(name, &arrays[1])?) } else { None };
        let text_at = |row: usize| text.as_ref().filter(|t| t.is_valid(row)).map(|t| t.value(row));
        let out: ArrayRef = match self.func {
            JsonbFn::Get => binary_dict(input.map(|row, b| {
                let Some(key) = text_at(row) else { return Ok(None) };
                Ok(checked(name, b)?.get_by_name(key, true).map_err(|e| crate_error(name, e))?.map(|v| v.to_vec()))
            })?)?,
            JsonbFn::PathQueryFirst | JsonbFn::PathQuery => {
                let mut paths: HashMap<&str, JsonPath> = HashMap::new();
                let first = self.func == JsonbFn::PathQueryFirst;
                binary_dict(input.map(|row, b| {
                    let Some(path) = text_at(row) else { return Ok(None) };
                    if !paths.contains_key(path) {
                        paths.insert(path, parse_path(name, path)?);
                    }
                    let raw = checked(name, b)?;
                    let path = &paths[path];
                    if first {
                        Ok(raw.select_first_by_path(path).map_err(|e| crate_error(name, e))?.map(|v| v.to_vec()))
                    } else {
                        Ok(Some(raw.select_array_by_path(path).map_err(|e| crate_error(name, e))?.to_vec()))
                    }
                })?)?
            }
            JsonbFn::FormatJson => string_dict(input.map(|_, b| Ok(Some(checked(name, b)?.to_string())))?)?,
            JsonbFn::AsString => {
                string_dict(input.map(|_, b| Ok(checked(name, b)?.as_str().map_err(|e| crate_error(name, e))?.map(|s| s.into_owned())))?)?
            }
            JsonbFn::AsF64 => Arc::new(Float64Array::from(input.map(|_, b| checked(name, b)?.as_f64().map_err(|e| crate_error(name, e)))?)),
            JsonbFn::AsI64 => Arc::new(Int64Array::from(input.map(|_, b| checked(name, b)?.as_i64().map_err(|e| crate_error(name, e)))?)),
            JsonbFn::ArrayLength => Arc::new(Int64Array::from(
                input.map(|_, b| Ok(checked(name, b)?.array_length().map_err(|e| crate_error(name, e))?.map(|n| n as i64)))?,
            )),
            JsonbFn::ObjectKeys => keys_dict(input.map(|_, b| object_keys(name, checked(name, b)?))?)?,
        };
        debug_assert_eq!(out.len(), input.len());
        Ok(ColumnarValue::Array(out))
    }
}

// ---------------------------------------------------------------------------------------------
// Table functions: jsonb_each, jsonb_array_elements

#[derive(Debug, Clone, Copy)]
enum Rows {
    /// `key Utf8, value Binary`: an object's fields, or an array's elements keyed by index.
    Each,
    /// `value Binary`: an array's elements.
    ArrayElements,
}

impl Rows {
    fn name(self) -> &'static str {
        match self {
            Self::Each => "jsonb_each",
            Self::ArrayElements => "jsonb_array_elements",
        }
    }
    fn schema(self) -> SchemaRef {
        let value = Field::new("value", DataType::Binary, false);
        Arc::new(match self {
            Self::Each => Schema::new(vec![Field::new("key", DataType::Utf8, false), value]),
            Self::ArrayElements => Schema::new(vec![value]),
        })
    }

    /// The rows one JSONB value expands to.
    fn expand(self, bytes: &[u8], out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        let name = self.name();
        let raw = checked(name, bytes)?;
        if let Self::Each = self {
            if let Some(fields) = raw.object_each().map_err(|e| crate_error(name, e))? {
                out.extend(fields.into_iter().map(|(k, v)| (k, v.to_vec())));
                return Ok(());
            }
        }
        match raw.array_values().map_err(|e| crate_error(name, e))? {
            Some(values) => {
                out.extend(values.into_iter().enumerate().map(|(i, v)| (i.to_string(), v.to_vec())));
                Ok(())
            }
            None => Err(exec_error(match self {
                Self::Each => "jsonb_each: the argument is not a JSONB object or array".into(),
                Self::ArrayElements => "jsonb_array_elements: the argument is not a JSONB array".into(),
            })),
        }
    }
}

#[derive(Debug)]
struct JsonbRowsFunction {
    kind: Rows,
}

/// What a table function's argument is: a constant, or an expression / scalar subquery run when
/// the table is scanned (as upstream does: `jsonb_each((SELECT properties FROM processes …))`).
#[derive(Debug, Clone)]
enum Source {
    Literal(ScalarValue),
    Plan(Arc<LogicalPlan>),
}

impl TableFunctionImpl for JsonbRowsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = self.kind.name();
        let [arg] = args.exprs() else {
            return Err(DataFusionError::Plan(format!("{name} takes exactly one argument (a JSONB value), got {}", args.exprs().len())));
        };
        let source = match arg {
            Expr::Literal(v, _) => Source::Literal(v.clone()),
            Expr::ScalarSubquery(s) => Source::Plan(s.subquery.clone()),
            other => Source::Plan(Arc::new(LogicalPlanBuilder::empty(true).project(vec![other.clone()])?.build()?)),
        };
        if let Source::Plan(plan) = &source {
            // The argument came from the client's query, so it obeys the same read-only rule.
            SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false).verify_plan(plan)?;
        }
        Ok(Arc::new(JsonbRowsTable { kind: self.kind, source }))
    }
}

#[derive(Debug)]
struct JsonbRowsTable {
    kind: Rows,
    source: Source,
}

fn scalar_bytes(name: &str, v: &ScalarValue) -> Result<Option<Vec<u8>>> {
    match v {
        ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => Ok(b.clone()),
        ScalarValue::Dictionary(_, inner) => scalar_bytes(name, inner),
        ScalarValue::Null => Ok(None),
        other => Err(DataFusionError::Plan(format!("{name}: the argument must be JSONB (Binary), got {}", other.data_type()))),
    }
}

#[async_trait]
impl TableProvider for JsonbRowsTable {
    fn schema(&self) -> SchemaRef {
        self.kind.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let name = self.kind.name();
        let inputs: Vec<Vec<u8>> = match &self.source {
            Source::Literal(v) => scalar_bytes(name, v)?.into_iter().collect(),
            Source::Plan(plan) => {
                let physical = super::sandbox::cooperative(state.create_physical_plan(plan).await?)?;
                let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
                // Upstream's jsonb_each refuses an empty subquery; jsonb_array_elements gives no rows.
                if matches!(self.kind, Rows::Each) && batches.iter().all(|b| b.num_rows() == 0) {
                    return Err(exec_error("jsonb_each: the subquery returned no rows".into()));
                }
                let mut inputs = Vec::new();
                for batch in &batches {
                    if batch.num_columns() != 1 {
                        return Err(exec_error(format!("{name}: the subquery must return one column, got {}", batch.num_columns())));
                    }
                    let column = JsonbColumn::new(name, batch.column(0))?;
                    inputs.extend(column.map(|_, b| Ok(Some(b.to_vec())))?.into_iter().flatten());
                }
                inputs
            }
        };
        // The rows are built whole before the scan streams them: they count against the query's
        // memory limit while they are built, so a huge expansion fails instead of exhausting memory.
        let reservation = MemoryConsumer::new(name).register(&state.runtime_env().memory_pool);
        let mut rows = Vec::new();
        for bytes in &inputs {
            let before = rows.len();
            self.kind.expand(bytes, &mut rows)?;
            let added: usize = rows[before..].iter().map(|(k, v): &(String, Vec<u8>)| k.len() + v.len() + 16).sum();
            reservation.try_grow(added)?;
            if limit.is_some_and(|n| rows.len() >= n) {
                break;
            }
        }
        if let Some(n) = limit {
            rows.truncate(n);
        }
        let values: ArrayRef = Arc::new(rows.iter().map(|(_, v)| Some(v.as_slice())).collect::<BinaryArray>());
        let columns = match self.kind {
            Rows::Each => vec![Arc::new(rows.iter().map(|(k, _)| Some(k.as_str())).collect::<StringArray>()) as ArrayRef, values],
            Rows::ArrayElements => vec![values],
        };
        let batch = RecordBatch::try_new(self.schema(), columns)?;
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema(), projection.cloned())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_check_refuses_truncation_bad_utf8_and_depth() {
        let mut ok = Vec::new();
        jsonb::parse_value(br#"{"a":[1,"x",{"b":null}]}"#).unwrap().write_to_vec(&mut ok);
        assert!(check_jsonb(&ok).is_ok());
        for cut in 0..ok.len() {
            assert!(check_jsonb(&ok[..cut]).is_err(), "truncated at {cut}");
        }
        // A scalar string "x\xFF": header, string entry of 2 bytes, payload.
        let s = [0x20, 0, 0, 0, 0x10, 0, 0, 2, b'x', 0xFF];
        assert_eq!(check_jsonb(&s), Err("string is not UTF-8".to_string()));
        let deep = format!("{}{}", "[".repeat(MAX_JSONB_DEPTH + 1), "]".repeat(MAX_JSONB_DEPTH + 1));
        assert!(matches!(check_text(&deep), TextCheck::TooDeep));
        let mut nested = Vec::new();
        // Built by hand, as a client could send it: MAX+1 single-element arrays, one in another.
        let mut inner: Vec<u8> = vec![0x80, 0, 0, 0];
        for _ in 0..MAX_JSONB_DEPTH {
            let mut outer = vec![0x80, 0, 0, 1];
            outer.extend_from_slice(&(CONTAINER_ENTRY | inner.len() as u32).to_be_bytes());
            outer.extend_from_slice(&inner);
            inner = outer;
        }
        nested.extend_from_slice(&inner);
        assert!(check_jsonb(&nested).unwrap_err().contains("nested more than"));
    }
}
