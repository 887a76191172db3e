//! Block decoding: CBOR payload → LZ4 frames → transit queues → events read in place.
//!
//! Everything here reads bytes from the object store, so every read is checked (`try_*`).

mod event;
mod parser;
mod payload;
mod reader;
mod strings;
mod udt;
mod value;

pub use event::{le_word, EventRef, MemberIndex, PodRef, RunTypes, TypeMemo, ValueRef};
pub use parser::{id_slot, try_for_each_object, try_for_each_object_with, try_parse_pod, try_read_dependencies, DependencyMap, Taken};
pub use payload::{
    lz4_output_limit, try_decode_payload, try_lz4_frame_decompress, try_lz4_frame_decompress_within, BlockBuffers, LZ4_MAX_OUTPUT, LZ4_MAX_RATIO,
    LZ4_MIN_LIMIT,
};
pub use udt::{CheckPlan, Kind, Member, Udt, UdtTable};
pub use value::{Object, Value, PROPERTY_SET};

use anyhow::{Context, Result};

/// The two type tables of a stream (`streams.dependencies_metadata`, `streams.objects_metadata`).
#[derive(Debug, Clone, Default)]
pub struct StreamTypes {
    pub dependencies: UdtTable,
    pub objects: UdtTable,
}

impl StreamTypes {
    /// From a StreamInfo envelope (`insert_stream` body), where the two tables are CBOR arrays.
    pub fn try_from_stream_info(stream_info: &[u8]) -> Result<Self> {
        let v: ciborium::value::Value = ciborium::de::from_reader(stream_info)
            .map_err(|e| anyhow::anyhow!("invalid CBOR in StreamInfo ({} bytes): {e}", stream_info.len()))?;
        let map = v.as_map().ok_or_else(|| anyhow::anyhow!("StreamInfo is not a CBOR map"))?;
        let table = |key: &str| -> Result<UdtTable> {
            let field = map
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .map(|(_, v)| v)
                .ok_or_else(|| anyhow::anyhow!("StreamInfo has no `{key}`"))?;
            UdtTable::try_from_value(field).with_context(|| format!("StreamInfo `{key}`"))
        };
        Ok(Self { dependencies: table("dependencies_metadata")?, objects: table("objects_metadata")? })
    }

    pub fn try_from_cbor(dependencies_metadata: &[u8], objects_metadata: &[u8]) -> Result<Self> {
        Ok(Self {
            dependencies: UdtTable::try_from_cbor(dependencies_metadata, "dependencies_metadata")?,
            objects: UdtTable::try_from_cbor(objects_metadata, "objects_metadata")?,
        })
    }
}

/// One block's decompressed transit buffers and its dependencies, built once; events are read
/// from it in place, as many times as needed.
pub struct Block {
    buffers: BlockBuffers,
    deps: DependencyMap,
}

impl Block {
    pub fn try_decode(payload: &[u8], types: &StreamTypes) -> Result<Self> {
        let buffers = try_decode_payload(payload)?;
        let deps = try_read_dependencies(&buffers.dependencies, &types.dependencies).context("reading dependencies")?;
        Ok(Self { buffers, deps })
    }

    /// Calls `f(index_in_block, event)` for each event; `types` must be the ones it was decoded with.
    pub fn try_for_each_event<'a>(
        &'a self,
        types: &'a StreamTypes,
        f: impl FnMut(usize, &EventRef<'a>) -> Result<()>,
    ) -> Result<()> {
        try_for_each_object(&self.buffers.objects, &types.objects, &self.deps, f).context("reading objects")
    }

    /// [`Block::try_for_each_event`] with a view's fast path and state ([`try_for_each_object_with`]).
    pub fn try_for_each_event_with<'a, S>(
        &'a self,
        types: &'a StreamTypes,
        state: &mut S,
        f: impl FnMut(usize, &EventRef<'a>, &mut S) -> Result<()>,
        run: impl FnMut(usize, &'a [u8], &mut S) -> Taken,
    ) -> Result<()> {
        try_for_each_object_with(&self.buffers.objects, &types.objects, &self.deps, state, f, run).context("reading objects")
    }
}

/// Decodes a stored payload and calls `f(index_in_block, event)` for each event.
pub fn try_for_each_event(payload: &[u8], types: &StreamTypes, mut f: impl FnMut(usize, &EventRef) -> Result<()>) -> Result<()> {
    Block::try_decode(payload, types)?.try_for_each_event(types, |i, e| f(i, e))
}

/// The stored payload of an `insert_block` body: its `payload` entry re-encoded alone, as the
/// ingestion side stores it.
pub fn try_payload_of_block_envelope(body: &[u8]) -> Result<Vec<u8>> {
    let v: ciborium::value::Value =
        ciborium::de::from_reader(body).map_err(|e| anyhow::anyhow!("invalid CBOR in block envelope ({} bytes): {e}", body.len()))?;
    let map = v.as_map().ok_or_else(|| anyhow::anyhow!("block envelope is not a CBOR map"))?;
    let payload = map
        .iter()
        .find(|(k, _)| k.as_text() == Some("payload"))
        .map(|(_, v)| v)
        .ok_or_else(|| anyhow::anyhow!("block envelope has no `payload`"))?;
    let mut out = Vec::new();
    ciborium::ser::into_writer(payload, &mut out).map_err(|e| anyhow::anyhow!("re-encoding payload: {e}"))?;
    Ok(out)
}

/// Decodes a whole payload into its events (tests, `parse_block`, golden vectors).
pub fn try_decode_events(payload: &[u8], types: &StreamTypes) -> Result<Vec<Object>> {
    let mut events = Vec::new();
    try_for_each_event(payload, types, |_, e| {
        events.push(e.try_to_object()?);
        Ok(())
    })?;
    Ok(events)
}
