//! Every golden vector of `unreal-plugin-protocol/vectors/manifest.json` that is a block: decodable
//! ones must decode to the events of their expected `.json`, corrupt ones must fail with the
//! expected error. Vectors whose source is upstream or legacy guard stored data: never delete them.

use micromegas_analytics::decode::{try_decode_events, try_payload_of_block_envelope, StreamTypes};
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../unreal-plugin-protocol/vectors")
}

fn decode(dir: &std::path::Path, v: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let read = |key: &str| -> anyhow::Result<Vec<u8>> {
        let rel = v[key].as_str().ok_or_else(|| anyhow::anyhow!("vector has no `{key}`"))?;
        Ok(std::fs::read(dir.join(rel))?)
    };
    let types = StreamTypes::try_from_stream_info(&read("stream_info")?)?;
    let payload = try_payload_of_block_envelope(&read("body")?)?;
    let events = try_decode_events(&payload, &types)?;
    Ok(serde_json::Value::Array(events.iter().map(|e| e.to_json()).collect()))
}

#[test]
fn every_block_vector_decodes_to_its_expected_events_or_error() {
    let dir = vectors_dir();
    // A missing manifest is a failure, never a pass: the vectors guard stored data.
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap_or_else(|e| panic!("golden vectors: cannot read {}: {e}", dir.join("manifest.json").display()));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let vectors = manifest["vectors"].as_array().expect("manifest has a `vectors` array");
    let mut checked = 0;
    let mut failures = Vec::new();
    for v in vectors.iter().filter(|v| v["route"] == "insert_block") {
        let name = v["name"].as_str().unwrap_or("?");
        let expect = &v["expect"]["decode"];
        let got = decode(&dir, v);
        match (expect, got) {
            (serde_json::Value::String(file), Ok(events)) => {
                let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
                if expected["events"] != events {
                    failures.push(format!("{name}: events differ\n expected {}\n got      {}", expected["events"], events));
                }
            }
            (serde_json::Value::String(_), Err(e)) => failures.push(format!("{name}: expected events, got error {e:#}")),
            (serde_json::Value::Object(o), Err(e)) => {
                let want = o.get("error").and_then(|w| w.as_str()).unwrap_or_default();
                if !format!("{e:#}").contains(want) {
                    failures.push(format!("{name}: error `{e:#}` does not contain `{want}`"));
                }
            }
            (serde_json::Value::Object(_), Ok(_)) => failures.push(format!("{name}: corrupt vector decoded without error")),
            _ => continue,
        }
        checked += 1;
    }
    assert!(checked > 0, "the manifest lists no block vector");
    assert!(failures.is_empty(), "{} of {checked} block vectors failed:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{checked} block vectors checked");
}
