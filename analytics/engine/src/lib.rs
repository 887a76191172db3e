//! Micromegas analytics engine: block decoding, views over PostgreSQL metadata and object-store
//! blocks, all queried with DataFusion. The napi surface lives in the parent crate; this crate
//! has no Node dependency so it is unit-tested with `cargo test`.

pub mod decode;
pub mod engine;
pub mod lakehouse;
pub mod metadata;
pub mod sql;
pub mod store;
pub mod time;
pub mod views;
