//! Block decoding: CBOR payload → LZ4 frames → transit queues → generic objects.
//!
//! Everything here reads bytes from the object store, so every read is checked (`try_*`).

mod parser;
mod payload;
mod reader;
mod strings;
mod udt;
mod value;

pub use parser::{try_for_each_object, try_parse_pod, try_read_dependencies, DependencyMap};
pub use payload::{try_decode_payload, try_lz4_frame_decompress, BlockBuffers};
pub use udt::{Member, Udt, UdtTable};
pub use value::{Object, Value, PROPERTY_SET};

use anyhow::{Context, Result};
use std::sync::Arc;

/// The two type tables of a stream (`streams.dependencies_metadata`, `streams.objects_metadata`).
#[derive(Debug, Clone, Default)]
pub struct StreamTypes {
    pub dependencies: UdtTable,
    pub objects: UdtTable,
}

impl StreamTypes {
    pub fn try_from_cbor(dependencies_metadata: &[u8], objects_metadata: &[u8]) -> Result<Self> {
        Ok(Self {
            dependencies: UdtTable::try_from_cbor(dependencies_metadata, "dependencies_metadata")?,
            objects: UdtTable::try_from_cbor(objects_metadata, "objects_metadata")?,
        })
    }
}

/// Decodes a stored payload and calls `f(index_in_block, event)` for each event.
pub fn try_for_each_event(
    payload: &[u8],
    types: &StreamTypes,
    f: impl FnMut(usize, Arc<Object>) -> Result<()>,
) -> Result<()> {
    let buffers = try_decode_payload(payload)?;
    let deps = try_read_dependencies(&buffers.dependencies, &types.dependencies).context("reading dependencies")?;
    try_for_each_object(&buffers.objects, &types.objects, &deps, f).context("reading objects")
}

/// Decodes a whole payload into its events (tests, `parse_block`, golden vectors).
pub fn try_decode_events(payload: &[u8], types: &StreamTypes) -> Result<Vec<Arc<Object>>> {
    let mut events = Vec::new();
    try_for_each_event(payload, types, |_, e| {
        events.push(e);
        Ok(())
    })?;
    Ok(events)
}
