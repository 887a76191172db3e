//! Builders for hand-made transit blocks: UDT metadata as CBOR, queues, and stored payloads.
#![allow(dead_code)]

use ciborium::value::Value as Cbor;
use std::io::Write;

pub struct M(pub &'static str, pub &'static str, pub usize, pub usize, pub bool);

pub fn udt(name: &str, size: usize, is_reference: bool, members: &[M]) -> Cbor {
    let t = |s: &str| Cbor::Text(s.to_string());
    let members = members
        .iter()
        .map(|m| {
            Cbor::Map(vec![
                (t("name"), t(m.0)),
                (t("type_name"), t(m.1)),
                (t("offset"), Cbor::Integer((m.2 as u64).into())),
                (t("size"), Cbor::Integer((m.3 as u64).into())),
                (t("is_reference"), Cbor::Bool(m.4)),
            ])
        })
        .collect();
    Cbor::Map(vec![
        (t("name"), t(name)),
        (t("size"), Cbor::Integer((size as u64).into())),
        (t("members"), Cbor::Array(members)),
        (t("is_reference"), Cbor::Bool(is_reference)),
    ])
}

pub fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

pub fn udts(list: Vec<Cbor>) -> Vec<u8> {
    cbor_bytes(&Cbor::Array(list))
}

pub fn lz4(data: &[u8]) -> Vec<u8> {
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Stored payload with byte strings (current producers).
pub fn payload(deps: &[u8], objs: &[u8]) -> Vec<u8> {
    cbor_bytes(&Cbor::Map(vec![
        (Cbor::Text("dependencies".into()), Cbor::Bytes(lz4(deps))),
        (Cbor::Text("objects".into()), Cbor::Bytes(lz4(objs))),
    ]))
}

/// Stored payload with arrays of integers (Rust producers ≤ 0.28).
pub fn legacy_payload(deps: &[u8], objs: &[u8]) -> Vec<u8> {
    let arr = |b: Vec<u8>| Cbor::Array(b.into_iter().map(|x| Cbor::Integer(x.into())).collect());
    cbor_bytes(&Cbor::Map(vec![
        (Cbor::Text("dependencies".into()), arr(lz4(deps))),
        (Cbor::Text("objects".into()), arr(lz4(objs))),
    ]))
}

/// Appends transit records.
#[derive(Default)]
pub struct Queue(pub Vec<u8>);

impl Queue {
    pub fn pod(&mut self, index: u8, body: &[u8]) -> &mut Self {
        self.0.push(index);
        self.0.extend_from_slice(body);
        self
    }
    pub fn var(&mut self, index: u8, body: &[u8]) -> &mut Self {
        self.0.push(index);
        self.0.extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.0.extend_from_slice(body);
        self
    }
    /// `StaticString`: id + UTF-8.
    pub fn static_string(&mut self, index: u8, id: u64, s: &str) -> &mut Self {
        let mut b = id.to_le_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        self.var(index, &b)
    }
    /// `StaticStringDependency`: id + dyn string with a codec.
    pub fn static_string_dep(&mut self, index: u8, id: u64, codec: u8, s: &str) -> &mut Self {
        let mut b = id.to_le_bytes().to_vec();
        b.extend(dyn_string(codec, s));
        self.var(index, &b)
    }
}

/// `codec:u8 len:u32 bytes`: codec 0/2 as UTF-8 bytes, 1 as UTF-16LE.
pub fn dyn_string(codec: u8, s: &str) -> Vec<u8> {
    let bytes: Vec<u8> = if codec == 1 {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    } else {
        s.as_bytes().to_vec()
    };
    let mut b = vec![codec];
    b.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    b.extend(bytes);
    b
}

/// Concatenates little-endian fields.
#[derive(Default)]
pub struct Pod(pub Vec<u8>);
impl Pod {
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn f64(mut self, v: f64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    pub fn pad(mut self, n: usize) -> Self {
        self.0.extend(std::iter::repeat(0xAA).take(n));
        self
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The Rust producer's log stream tables (reference §4.2, rustc 1.95 layouts).
pub fn rust_log_metadata() -> (Vec<u8>, Vec<u8>) {
    let deps = udts(vec![
        udt("StaticString", 0, false, &[]),
        udt("StaticStringDependency", 0, false, &[]),
        udt(
            "LogMetadataRecord",
            48,
            false,
            &[
                M("id", "u64", 0, 8, false),
                M("fmt_str", "* const u8", 8, 8, true),
                M("target", "* const u8", 16, 8, true),
                M("module_path", "* const u8", 24, 8, true),
                M("file", "* const u8", 32, 8, true),
                M("line", "u32", 40, 4, false),
                M("level", "u32", 44, 4, false),
            ],
        ),
        udt("PropertySetDependency", 0, false, &[]),
        udt(
            "Property",
            32,
            false,
            &[M("name", "StaticStringRef", 0, 16, false), M("value", "StaticStringRef", 16, 16, false)],
        ),
        udt("StaticStringRef", 16, true, &[M("id", "usize", 0, 8, true)]),
    ]);
    let objs = udts(vec![
        udt(
            "LogStaticStrEvent",
            16,
            false,
            &[M("desc", "& 'static LogMetadata", 0, 8, true), M("time", "i64", 8, 8, false)],
        ),
        udt("LogStringEventV2", 0, false, &[]),
        udt(
            "LogStaticStrInteropEvent",
            48,
            false,
            &[
                M("target", "StringId", 0, 16, false),
                M("msg", "StringId", 16, 16, false),
                M("time", "i64", 32, 8, false),
                M("level", "u32", 40, 4, false),
            ],
        ),
        udt("LogStringInteropEventV3", 0, false, &[]),
        udt("TaggedLogString", 0, false, &[]),
        udt("StringId", 16, true, &[M("id", "usize", 0, 8, true)]),
        udt("StaticStringRef", 16, true, &[M("id", "usize", 0, 8, true)]),
    ]);
    (deps, objs)
}

/// The worked example of reference §3.8: `info!("hello")` then a formatted "x=1".
pub fn worked_example_buffers() -> (Vec<u8>, Vec<u8>) {
    let deps = hex(
        "00 0d000000 0010000000000000 68656c6c6f
         00 0b000000 0020000000000000 617070
         00 0b000000 0030000000000000 617070
         00 13000000 0040000000000000 7372632f6d61696e2e7273
         02 0050000000000000 0010000000000000 0020000000000000
            0030000000000000 0040000000000000 07000000 04000000",
    );
    let objs = hex(
        "00 0050000000000000 40420f0000000000
         01 18000000 0050000000000000 34440f0000000000 02 03000000 783d31",
    );
    (deps, objs)
}

/// Unreal log stream tables (reference §4.3).
pub fn unreal_log_metadata() -> (Vec<u8>, Vec<u8>) {
    let deps = udts(vec![
        udt("StaticStringDependency", 0, false, &[]),
        udt(
            "LogMetadataDependency",
            64,
            false,
            &[
                M("id", "uint64", 0, 8, false),
                M("target", "StaticStringRef", 8, 16, true),
                M("fmt_str", "StaticStringRef", 24, 16, true),
                M("file", "StaticStringRef", 40, 16, true),
                M("line", "uint32", 56, 4, false),
                M("level", "uint8", 60, 1, false),
            ],
        ),
        udt("PropertySetDependency", 0, false, &[]),
        udt(
            "Property",
            32,
            false,
            &[M("name", "StaticStringRef", 0, 16, true), M("value", "StaticStringRef", 16, 16, true)],
        ),
    ]);
    let objs = udts(vec![
        udt("TaggedLogInteropEvent", 0, false, &[M("time", "uint64", 0, 8, false), M("level", "Level", 8, 1, false)]),
        udt("TaggedLogString", 0, false, &[]),
        udt("StaticStringRef", 16, true, &[M("id", "uint64", 0, 8, true)]),
    ]);
    (deps, objs)
}

pub mod lake;
pub mod scenario;

/// Rust producer's metrics tables (reference §4.2).
pub fn rust_metrics_metadata() -> (Vec<u8>, Vec<u8>) {
    let deps = udts(vec![
        udt("StaticString", 0, false, &[]),
        udt("StaticStringDependency", 0, false, &[]),
        udt(
            "MetricMetadataDependency",
            48,
            false,
            &[
                M("id", "u64", 0, 8, false),
                M("name", "* const u8", 8, 8, true),
                M("unit", "* const u8", 16, 8, true),
                M("target", "* const u8", 24, 8, true),
                M("file", "* const u8", 32, 8, true),
                M("line", "u32", 40, 4, false),
                M("lod", "u32", 44, 4, false),
            ],
        ),
        udt("PropertySetDependency", 0, false, &[]),
        udt(
            "Property",
            32,
            false,
            &[M("name", "StaticStringRef", 0, 16, false), M("value", "StaticStringRef", 16, 16, false)],
        ),
        udt("StaticStringRef", 16, true, &[M("id", "usize", 0, 8, true)]),
    ]);
    let objs = udts(vec![
        udt("IntegerMetricEvent", 24, false, &[M("desc", "&MetricMetadata", 0, 8, true), M("value", "u64", 8, 8, false), M("time", "i64", 16, 8, false)]),
        udt("FloatMetricEvent", 24, false, &[M("desc", "&MetricMetadata", 0, 8, true), M("value", "f64", 8, 8, false), M("time", "i64", 16, 8, false)]),
        udt(
            "TaggedFloatMetricEvent",
            32,
            false,
            &[
                M("desc", "&MetricMetadata", 0, 8, true),
                M("properties", "&PropertySet", 8, 8, true),
                M("value", "f64", 16, 8, false),
                M("time", "i64", 24, 8, false),
            ],
        ),
    ]);
    (deps, objs)
}

/// Rust producer's thread (cpu) tables (reference §4.2).
pub fn rust_cpu_metadata() -> (Vec<u8>, Vec<u8>) {
    let deps = udts(vec![
        udt(
            "SpanRecord",
            48,
            false,
            &[
                M("id", "u64", 0, 8, false),
                M("name", "* const u8", 8, 8, true),
                M("target", "* const u8", 16, 8, true),
                M("module_path", "* const u8", 24, 8, true),
                M("file", "* const u8", 32, 8, true),
                M("line", "u32", 40, 4, false),
                M("lod", "u32", 44, 4, false),
            ],
        ),
        udt(
            "SpanLocationRecord",
            40,
            false,
            &[
                M("id", "u64", 0, 8, false),
                M("target", "* const u8", 8, 8, true),
                M("module_path", "* const u8", 16, 8, true),
                M("file", "* const u8", 24, 8, true),
                M("line", "u32", 32, 4, false),
                M("lod", "u32", 36, 4, false),
            ],
        ),
        udt("StaticString", 0, false, &[]),
    ]);
    let begin_end = |n: &'static str| udt(n, 16, false, &[M("thread_span_desc", "&SpanMetadata", 0, 8, true), M("time", "i64", 8, 8, false)]);
    let named = |n: &'static str| {
        udt(
            n,
            32,
            false,
            &[M("thread_span_location", "&SpanLocation", 0, 8, true), M("name", "StringId", 8, 16, false), M("time", "i64", 24, 8, false)],
        )
    };
    let async_ev = |n: &'static str| {
        udt(
            n,
            40,
            false,
            &[
                M("span_desc", "&SpanMetadata", 0, 8, true),
                M("span_id", "u64", 8, 8, false),
                M("parent_span_id", "u64", 16, 8, false),
                M("time", "i64", 24, 8, false),
                M("depth", "u32", 32, 4, false),
            ],
        )
    };
    let objs = udts(vec![
        begin_end("BeginThreadSpanEvent"),
        begin_end("EndThreadSpanEvent"),
        named("BeginThreadNamedSpanEvent"),
        named("EndThreadNamedSpanEvent"),
        async_ev("BeginAsyncSpanEvent"),
        async_ev("EndAsyncSpanEvent"),
        udt("StringId", 16, true, &[M("id", "usize", 0, 8, true)]),
    ]);
    (deps, objs)
}
