//! Block decoding: hand-built blocks from the reference's worked example and tables, the Unreal
//! string codecs, handles by reference and by value, property sets, and corrupt input.
//! Every corrupt case must return `Err` naming what was read, never panic.

mod common;
use common::*;
use micromegas_analytics::decode::{try_decode_events, StreamTypes};
use serde_json::json;

fn decode_json(deps_meta: &[u8], objs_meta: &[u8], payload: &[u8]) -> anyhow::Result<serde_json::Value> {
    let types = StreamTypes::try_from_cbor(deps_meta, objs_meta)?;
    let events = try_decode_events(payload, &types)?;
    Ok(serde_json::Value::Array(events.iter().map(|e| e.to_json()).collect()))
}

fn err_of(deps_meta: &[u8], objs_meta: &[u8], payload: &[u8]) -> String {
    format!("{:#}", decode_json(deps_meta, objs_meta, payload).expect_err("corrupt input must be rejected"))
}

#[test]
fn worked_example_decodes_to_two_log_events() {
    let (dm, om) = rust_log_metadata();
    let (deps, objs) = worked_example_buffers();
    let desc = json!({"type": "LogMetadataRecord", "fmt_str": "hello", "target": "app",
                      "module_path": "app", "file": "src/main.rs", "line": 7, "level": 4});
    let expected = json!([
        {"type": "LogStaticStrEvent", "desc": desc, "time": "1000000"},
        {"type": "LogStringEventV2", "desc": desc, "time": "1000500", "msg": "x=1"},
    ]);
    assert_eq!(decode_json(&dm, &om, &payload(&deps, &objs)).unwrap(), expected);
    // Rust ≤ 0.28 stored the two frames as arrays of integers: same events.
    assert_eq!(decode_json(&dm, &om, &legacy_payload(&deps, &objs)).unwrap(), expected);
}

#[test]
fn string_id_by_value_and_interop_v3_with_static_string_ref() {
    let (dm, om) = rust_log_metadata();
    let mut deps = Queue::default();
    deps.static_string(0, 0xA, "net").static_string_dep(1, 0xB, 2, "connection lost");
    let mut objs = Queue::default();
    // LogStaticStrInteropEvent: target StringId @0, msg StringId @16, time @32, level @40, 4 pad bytes.
    objs.pod(2, &Pod::default().u64(0xA).u32(3).pad(4).u64(0xB).u32(15).pad(4).u64(77).u32(2).pad(4).done());
    // LogStringInteropEventV3: time, level u8, StaticStringRef (16), dyn string.
    objs.var(3, &Pod::default().u64(78).u8(5).u64(0xA).u32(3).u8(2).pad(3).bytes(&dyn_string(2, "retry 2")).done());
    let got = decode_json(&dm, &om, &payload(&deps.0, &objs.0)).unwrap();
    assert_eq!(
        got,
        json!([
            {"type": "LogStaticStrInteropEvent", "target": "net", "msg": "connection lost", "time": "77", "level": 2},
            {"type": "LogStringInteropEventV3", "time": "78", "level": 5, "target": "net", "msg": "retry 2"},
        ])
    );
}

#[test]
fn unreal_tagged_log_with_ansi_and_wide_strings_and_a_property_set() {
    let (dm, om) = unreal_log_metadata();
    let mut deps = Queue::default();
    deps.static_string_dep(0, 1, 0, "LogTemp")
        .static_string_dep(0, 2, 1, "")
        .static_string_dep(0, 3, 0, "Game.cpp")
        .static_string_dep(0, 4, 1, "map")
        .static_string_dep(0, 5, 1, "Île-de-France ✓");
    // LogMetadataDependency (64 bytes): id, target/fmt_str/file as 16-byte StaticStringRef declared is_reference.
    let sref = |id: u64| Pod::default().u64(id).u32(0).u8(0).pad(3).done();
    let meta = Pod::default().u64(0x100).bytes(&sref(1)).bytes(&sref(2)).bytes(&sref(3)).u32(42).u8(3).pad(3).done();
    deps.pod(1, &meta);
    // Property set: id, count, then Property PODs (name ref, value ref).
    let props = Pod::default().u64(0x200).u32(1).bytes(&sref(4)).bytes(&sref(5)).done();
    deps.var(2, &props);
    let mut objs = Queue::default();
    // TaggedLogInteropEvent: time, level u8, StaticStringRef by value, properties id, dyn string (wide).
    objs.var(0, &Pod::default().u64(1_000).u8(2).bytes(&sref(1)).u64(0x200).bytes(&dyn_string(1, "crash → ☠")).done());
    // TaggedLogString: desc, properties, time, dyn string (ansi).
    objs.var(1, &Pod::default().u64(0x100).u64(0x200).u64(2_000).bytes(&dyn_string(0, "plain")).done());
    let got = decode_json(&dm, &om, &payload(&deps.0, &objs.0)).unwrap();
    let props = json!({"type": "PropertySet", "properties": {"map": "Île-de-France ✓"}});
    assert_eq!(
        got,
        json!([
            {"type": "TaggedLogInteropEvent", "time": "1000", "level": 2, "target": "LogTemp", "properties": props, "msg": "crash → ☠"},
            {"type": "TaggedLogString", "properties": props, "time": "2000", "msg": "plain",
             "desc": {"type": "LogMetadataDependency", "target": "LogTemp", "fmt_str": "", "file": "Game.cpp", "line": 42, "level": 3}},
        ])
    );
}

#[test]
fn unknown_variable_size_object_is_skipped() {
    let (dm, _) = rust_log_metadata();
    let om = udts(vec![udt("FutureEventV9", 0, false, &[]), udt("Tick", 8, false, &[M("time", "i64", 0, 8, false)])]);
    let mut objs = Queue::default();
    objs.var(0, b"whatever bytes").pod(1, &Pod::default().u64(5).done());
    let got = decode_json(&dm, &om, &payload(&[], &objs.0)).unwrap();
    assert_eq!(got, json!([{"type": "Tick", "time": "5"}]));
}

#[test]
fn image_event_carries_its_bytes() {
    let om = udts(vec![udt("ImageEvent", 0, false, &[])]);
    let dm = udts(vec![]);
    let mut objs = Queue::default();
    objs.var(
        0,
        &Pod::default().u64(9).bytes(&dyn_string(1, "screenshot")).bytes(&dyn_string(1, "image/png")).u32(3).bytes(&[1, 2, 3]).done(),
    );
    let got = decode_json(&dm, &om, &payload(&[], &objs.0)).unwrap();
    assert_eq!(got, json!([{"type": "ImageEvent", "time": "9", "name": "screenshot", "format": "image/png", "data": "010203"}]));
}

#[test]
fn corrupt_inputs_are_errors_that_say_what_was_read() {
    let (dm, om) = rust_log_metadata();
    let (deps, objs) = worked_example_buffers();

    let e = err_of(&dm, &om, &payload(&deps, &[9, 0, 0]));
    assert!(e.contains("unknown type index 9") && e.contains("7 types"), "{e}");

    let mut truncated = objs.clone();
    truncated.truncate(objs.len() - 2);
    let e = err_of(&dm, &om, &payload(&deps, &truncated));
    assert!(e.contains("LogStringEventV2 #1") && e.contains("need 24 bytes, have 22"), "{e}");

    let e = err_of(&dm, &om, &payload(&deps[..deps.len() - 49], &objs));
    assert!(e.contains("missing dependency 0x5000"), "{e}");

    let mut dup = deps.clone();
    dup.extend_from_slice(&hex("00 0d000000 0010000000000000 68656c6c6f"));
    let e = err_of(&dm, &om, &payload(&dup, &objs));
    assert!(e.contains("duplicate dependency id 0x1000"), "{e}");

    let e = err_of(&dm, &om, b"\xa1\x61x\x01");
    assert!(e.contains("no `dependencies` entry"), "{e}");

    let e = err_of(&dm, &om, &[0xff, 0x00]);
    assert!(e.contains("invalid CBOR in block payload"), "{e}");

    let mut frame = lz4(&objs);
    frame[0] = 0;
    let bad_magic = cbor_bytes(&ciborium::value::Value::Map(vec![
        ("dependencies".into(), ciborium::value::Value::Bytes(lz4(&deps))),
        ("objects".into(), ciborium::value::Value::Bytes(frame)),
    ]));
    let e = err_of(&dm, &om, &bad_magic);
    assert!(e.contains("not an LZ4 frame") && e.contains("objects"), "{e}");

    let mut frame = lz4(&objs);
    let n = frame.len();
    frame.truncate(n - 6);
    let cut = cbor_bytes(&ciborium::value::Value::Map(vec![
        ("dependencies".into(), ciborium::value::Value::Bytes(lz4(&deps))),
        ("objects".into(), ciborium::value::Value::Bytes(frame)),
    ]));
    let e = err_of(&dm, &om, &cut);
    assert!(e.contains("corrupt LZ4 frame"), "{e}");

    // A dyn string whose length runs past its record.
    let mut o = Queue::default();
    o.var(1, &Pod::default().u64(0x5000).u64(1).u8(2).u32(1000).bytes(b"abc").done());
    let e = err_of(&dm, &om, &payload(&deps, &o.0));
    assert!(e.contains("need 1000 bytes, have 3"), "{e}");

    // Invalid UTF-8 in a StaticString fails the block.
    let mut d = Queue::default();
    d.static_string(0, 1, "ok");
    d.var(0, &Pod::default().u64(2).bytes(&[0xff, 0xfe]).done());
    let e = err_of(&dm, &om, &payload(&d.0, &[]));
    assert!(e.contains("invalid UTF-8 in StaticString 0x2"), "{e}");

    // An unknown variable-size dependency type is an error.
    let dm2 = udts(vec![udt("MysteryDependency", 0, false, &[])]);
    let mut d = Queue::default();
    d.var(0, b"12345678");
    let e = err_of(&dm2, &om, &payload(&d.0, &[]));
    assert!(e.contains("unknown variable-size dependency type MysteryDependency"), "{e}");

    // A type that contains itself by value.
    let om2 = udts(vec![udt("Loop", 8, false, &[M("inner", "Loop", 0, 8, false)])]);
    let mut o = Queue::default();
    o.pod(0, &[0; 8]);
    let e = err_of(&dm, &om2, &payload(&[], &o.0));
    assert!(e.contains("nests deeper"), "{e}");

    // A member that lies outside its instance.
    let om3 = udts(vec![udt("Bad", 8, false, &[M("time", "i64", 4, 8, false)])]);
    let e = err_of(&dm, &om3, &payload(&[], &Queue::default().pod(0, &[0; 8]).0.clone()));
    assert!(e.contains("Bad.time spans bytes 4..12 outside the 8-byte instance"), "{e}");

    // Odd byte count in a UTF-16 string.
    let mut d = Queue::default();
    d.var(1, &Pod::default().u64(1).u8(1).u32(3).bytes(b"abc").done());
    let e = err_of(&dm, &om, &payload(&d.0, &[]));
    assert!(e.contains("odd byte count 3"), "{e}");

    // Metadata that is not CBOR.
    let e = format!("{:#}", StreamTypes::try_from_cbor(&[0x9f, 0x01], &om).unwrap_err());
    assert!(e.contains("dependencies_metadata"), "{e}");
}
