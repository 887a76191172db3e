//! `property_get(properties, key)`: the value of one key of a properties column, NULL if absent.
//!
//! Properties are stored as dictionary-encoded JSON object text, so the lookup runs once per
//! distinct property set (dictionary value), not once per row.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PropertyGet {
    signature: Signature,
}

impl Default for PropertyGet {
    fn default() -> Self {
        Self { signature: Signature::any(2, Volatility::Immutable) }
    }
}

fn lookup(json: &str, key: &str) -> Option<String> {
    let serde_json::Value::Object(map) = serde_json::from_str(json).ok()? else {
        return None;
    };
    match map.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn lookup_all(values: &StringArray, key: &str) -> StringArray {
    values.iter().map(|v| v.and_then(|j| lookup(j, key))).collect()
}

fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

impl ScalarUDFImpl for PropertyGet {
    fn name(&self) -> &str {
        "property_get"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Dictionary(_, v) if **v == DataType::Utf8 => Ok(dict_type()),
            DataType::Utf8 | DataType::Null => Ok(DataType::Utf8),
            other => Err(DataFusionError::Plan(format!("property_get: properties must be text or dictionary of text, got {other}"))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let key = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(k)) | ScalarValue::LargeUtf8(Some(k)) | ScalarValue::Utf8View(Some(k))) => k.clone(),
            _ => return Err(DataFusionError::Plan("property_get: the key must be a string literal".into())),
        };
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let text = match s {
                    ScalarValue::Utf8(v) => v.clone(),
                    ScalarValue::Dictionary(_, inner) => match inner.as_ref() {
                        ScalarValue::Utf8(v) => v.clone(),
                        _ => None,
                    },
                    _ => None,
                };
                let v = text.and_then(|j| lookup(&j, &key));
                Ok(ColumnarValue::Scalar(match s {
                    ScalarValue::Dictionary(k, _) => ScalarValue::Dictionary(k.clone(), Box::new(ScalarValue::Utf8(v))),
                    _ => ScalarValue::Utf8(v),
                }))
            }
            ColumnarValue::Array(a) => {
                let out: ArrayRef = match a.data_type() {
                    DataType::Dictionary(_, _) => {
                        let dict: &DictionaryArray<Int32Type> = a
                            .as_any()
                            .downcast_ref()
                            .ok_or_else(|| DataFusionError::Plan("property_get: dictionary keys must be Int32".into()))?;
                        let values = lookup_all(dict.values().as_string::<i32>(), &key);
                        // A missing key is a null row, not a valid key pointing at a null value
                        // (writers such as arrow-json only look at the keys' validity).
                        let keys: Int32Array = dict.keys().iter().map(|k| k.filter(|&k| values.is_valid(k as usize))).collect();
                        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))?)
                    }
                    DataType::Utf8 => Arc::new(lookup_all(a.as_string::<i32>(), &key)),
                    other => return Err(DataFusionError::Plan(format!("property_get: unsupported properties type {other}"))),
                };
                Ok(ColumnarValue::Array(out))
            }
        }
    }
}
