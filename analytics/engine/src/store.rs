//! Object store access: `file:///path` or `s3://bucket/prefix` (S3-compatible, http allowed).

use crate::metadata::BlockRow;
use anyhow::{anyhow, bail, Context, Result};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

/// Opens the store named by `MICROMEGAS_OBJECT_STORE_URI`. S3 settings come from the usual
/// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`.
pub fn open_object_store(uri: &str) -> Result<Arc<dyn ObjectStore>> {
    let url = url::Url::parse(uri).with_context(|| format!("invalid object store URI {uri}"))?;
    match url.scheme() {
        "file" => {
            let path = url.to_file_path().map_err(|_| anyhow!("invalid file URI {uri}"))?;
            std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(&path)?))
        }
        "s3" => {
            let bucket = url.host_str().ok_or_else(|| anyhow!("no bucket in {uri}"))?;
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_allow_http(true);
            if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                // S3-compatible servers on a plain host:port need path-style requests.
                builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
            }
            if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
                builder = builder.with_region("us-east-1");
            }
            let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
            let prefix = url.path().trim_matches('/');
            if prefix.is_empty() {
                Ok(store)
            } else {
                Ok(Arc::new(PrefixStore::new(store, prefix)))
            }
        }
        other => bail!("unsupported object store scheme {other}: use file:// or s3://"),
    }
}

/// Why a block's payload could not be read.
#[derive(Debug)]
pub enum FetchError {
    /// The block's row does not match what is stored (payload missing, range past the end of its
    /// object, negative sizes): it will never be readable, so queries skip it and count it.
    Corrupt(anyhow::Error),
    /// The store failed (network, permissions): the query fails rather than answer without it.
    Unavailable(anyhow::Error),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Corrupt(e) | FetchError::Unavailable(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// Range reads larger than this first check the object's size: a local store allocates the whole
/// range before reading it, so a forged `payload_size` must not reach it unchecked.
const CHECKED_RANGE_ABOVE: u64 = 16 << 20;

/// Reads one block's stored payload: its own object (upstream layout) or a range of a packed object.
/// The row's sizes are untrusted: a range is checked against the object before anything that
/// large is allocated, and a read that comes back short is corrupt.
pub async fn fetch_block_payload(store: &dyn ObjectStore, block: &BlockRow) -> std::result::Result<bytes::Bytes, FetchError> {
    let corrupt = |e: anyhow::Error| FetchError::Corrupt(e);
    let size = u64::try_from(block.payload_size).map_err(|_| corrupt(anyhow!("negative payload_size {} for block {}", block.payload_size, block.block_id)))?;
    match &block.payload_object {
        Some(key) => {
            let offset = u64::try_from(block.payload_offset.unwrap_or(0))
                .map_err(|_| corrupt(anyhow!("negative payload_offset for block {}", block.block_id)))?;
            let end = offset
                .checked_add(size)
                .ok_or_else(|| corrupt(anyhow!("payload range {offset}+{size} of block {} overflows", block.block_id)))?;
            let path = Path::from(key.as_str());
            let past_end = |object_size: u64| {
                corrupt(anyhow!("block {} payload {offset}+{size} runs past the end of {key} ({object_size} bytes)", block.block_id))
            };
            if size > CHECKED_RANGE_ABOVE {
                let meta = store.head(&path).await.map_err(|e| classify(e, || format!("reading the size of {key} for block {}", block.block_id)))?;
                if end > meta.size {
                    return Err(past_end(meta.size));
                }
            }
            match store.get_range(&path, offset..end).await {
                Ok(bytes) if bytes.len() as u64 == size => Ok(bytes),
                Ok(bytes) => Err(corrupt(anyhow!("block {} payload {offset}+{size} of {key}: read {} bytes", block.block_id, bytes.len()))),
                Err(e) => {
                    let what = || format!("reading block {} from {key} at {offset}+{size}", block.block_id);
                    // A range past the end of the object is the row's fault, not the store's.
                    match store.head(&path).await {
                        Ok(meta) if end > meta.size => Err(past_end(meta.size)),
                        _ => Err(classify(e, what)),
                    }
                }
            }
        }
        None => {
            let key = format!("blobs/{}/{}/{}", block.process_id, block.stream_id, block.block_id);
            let what = || format!("reading block payload {key}");
            let got = store.get(&Path::from(key.as_str())).await.map_err(|e| classify(e, what))?;
            got.bytes().await.map_err(|e| classify(e, what))
        }
    }
}

/// A missing object is the block's fault (its payload is gone for good); anything else, the store's.
fn classify(e: object_store::Error, what: impl FnOnce() -> String) -> FetchError {
    let missing = matches!(e, object_store::Error::NotFound { .. });
    let e = anyhow::Error::new(e).context(what());
    if missing {
        FetchError::Corrupt(e)
    } else {
        FetchError::Unavailable(e)
    }
}
