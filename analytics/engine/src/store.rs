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

/// Reads one block's stored payload: its own object (upstream layout) or a range of a packed object.
pub async fn fetch_block_payload(store: &dyn ObjectStore, block: &BlockRow) -> Result<bytes::Bytes> {
    let size = u64::try_from(block.payload_size).map_err(|_| anyhow!("negative payload_size for block {}", block.block_id))?;
    match &block.payload_object {
        Some(key) => {
            let offset = u64::try_from(block.payload_offset.unwrap_or(0))
                .map_err(|_| anyhow!("negative payload_offset for block {}", block.block_id))?;
            let bytes = store
                .get_range(&Path::from(key.as_str()), offset..offset + size)
                .await
                .with_context(|| format!("reading block {} from {key} at {offset}+{size}", block.block_id))?;
            Ok(bytes)
        }
        None => {
            let key = format!("blobs/{}/{}/{}", block.process_id, block.stream_id, block.block_id);
            let bytes = store
                .get(&Path::from(key.as_str()))
                .await
                .with_context(|| format!("reading block payload {key}"))?
                .bytes()
                .await?;
            Ok(bytes)
        }
    }
}
