//! Cloud object stores through `object_store`: one [`CloudStore`] over
//! `Arc<dyn ObjectStore>` for every scheme, each built in by its feature.
//!
//! | URL | feature | client |
//! |---|---|---|
//! | `s3://BUCKET/PREFIX` | `aws` | `AmazonS3Builder::from_env` |
//! | `gs://BUCKET/PREFIX` | `gcp` | `GoogleCloudStorageBuilder::from_env` |
//! | `az://CONTAINER/PREFIX` | `azure` | `MicrosoftAzureBuilder::from_env` |
//!
//! Objects are `PREFIX/NAME`. Writes are create-only (`PutMode::Create`: an
//! `If-None-Match: *` put on S3 and Azure, `x-goog-if-generation-match: 0`
//! on GCS): the server refuses an existing name, and a put either lands
//! whole or not at all, so a killed run never leaves half a share visible.
//!
//! Credentials come only from the environment, never from umbra.toml:
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`; `GOOGLE_SERVICE_ACCOUNT`
//! (a service-account JSON file) or `GOOGLE_SERVICE_ACCOUNT_KEY`, else the
//! application-default or instance credentials; `AZURE_STORAGE_ACCOUNT_NAME`
//! with `AZURE_STORAGE_ACCOUNT_KEY` (or a SAS token, a service principal...),
//! or `AZURE_STORAGE_USE_EMULATOR=true` for Azurite. The store's `endpoint`
//! in umbra.toml overrides the service URL (an `http://` one is allowed);
//! `region` applies to S3 only.
//!
//! A share is mapped for its put (page cache, not heap: no copy of a large
//! object's share in umbra's memory); a batch put (a migrate group) sends up
//! to 16 at once, 64 MiB together at most. Gets are streamed to the
//! destination file.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::contract::{Store, valid_name};
use crate::archive::error::{ArchiveError, Result};

/// The bytes of the finished file `src` for a put, mapped rather than read
/// into the heap: a share of a large object costs page cache, which the
/// kernel can drop and read back, not memory of umbra's own.
fn mapped(src: &Path) -> io::Result<PutPayload> {
    let file = std::fs::File::open(src)?;
    if file.metadata()?.len() == 0 {
        return Ok(PutPayload::new());
    }
    // SAFETY: the mapping is only read, and `Store::put_if_absent`'s
    // contract is that `src` is a finished file the caller does not change
    // again (migrate's staged shares, under the archive lock).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(PutPayload::from_bytes(bytes::Bytes::from_owner(map)))
}

/// Shares put at once by a batch put, and the most bytes they may hold in
/// memory together.
const PUT_WAVE: usize = 16;
const PUT_WAVE_BYTES: u64 = 64 << 20;

/// A bucket (or container) and prefix in a cloud object store.
pub struct CloudStore {
    label: String,
    prefix: ObjectPath,
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        other => io::Error::other(other),
    }
}

impl CloudStore {
    /// Opens `url` (`s3://`, `gs://` or `az://`, each with its feature) as
    /// the store `label`; `endpoint` and `region` come from its `[[store]]`.
    pub fn open(
        label: &str,
        url: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self> {
        let bad = |reason: String| ArchiveError::Unsupported(format!("store {label}: {reason}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(format!("{url} is not an object-store URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad(format!("{url}: no bucket or container")));
        }
        if region.is_some() && scheme != "s3" {
            return Err(bad(format!(
                "{url}: `region` applies to s3:// stores only; remove it"
            )));
        }
        let store: Arc<dyn ObjectStore> = match scheme {
            #[cfg(feature = "aws")]
            "s3" => s3(bucket, endpoint, region),
            #[cfg(feature = "gcp")]
            "gs" => gcs(bucket, endpoint),
            #[cfg(feature = "azure")]
            "az" => azure(bucket, endpoint),
            _ => Err(format!("{scheme}:// stores are not built into this umbra")),
        }
        .map_err(|reason| bad(format!("{url}: {reason}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self {
            label: label.to_string(),
            prefix: ObjectPath::from(prefix.trim_matches('/')),
            store,
            runtime,
        })
    }

    /// A create-only put of the file `src` as `name`: `Ok(false)` when the
    /// name exists (the store refuses with 409/412 and keeps the first).
    async fn put_async(&self, name: &str, src: &Path) -> io::Result<bool> {
        let path = self.path(name)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.store.put_opts(&path, mapped(src)?, opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(to_io(e)),
        }
    }

    fn path(&self, name: &str) -> io::Result<ObjectPath> {
        if !valid_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not an object name"),
            ));
        }
        Ok(self.prefix.clone().join(name))
    }
}

#[cfg(feature = "aws")]
fn s3(
    bucket: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<Arc<dyn ObjectStore>, String> {
    let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(e) = endpoint {
        b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
    }
    if let Some(r) = region {
        b = b.with_region(r);
    }
    Ok(Arc::new(b.build().map_err(|e| e.to_string())?))
}

/// `endpoint` is the base URL of the JSON/XML API (`https://storage.googleapis.com`
/// by default); a service-account file's `gcs_base_url` also sets it.
#[cfg(feature = "gcp")]
fn gcs(bucket: &str, endpoint: Option<&str>) -> Result<Arc<dyn ObjectStore>, String> {
    use object_store::ClientConfigKey;
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
    if let Some(e) = endpoint {
        b = b.with_base_url(e.trim_end_matches('/'));
        if e.starts_with("http://") {
            b = b.with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), "true");
        }
    }
    Ok(Arc::new(b.build().map_err(|e| e.to_string())?))
}

/// `endpoint` is the account's blob service URL
/// (`https://ACCOUNT.blob.core.windows.net` by default; for Azurite
/// `http://127.0.0.1:10000/devstoreaccount1`). Emulator mode
/// (`AZURE_STORAGE_USE_EMULATOR=true`) takes its URL from
/// `AZURITE_BLOB_STORAGE_URL` instead and would ignore an endpoint, so the
/// two together are refused.
#[cfg(feature = "azure")]
fn azure(container: &str, endpoint: Option<&str>) -> Result<Arc<dyn ObjectStore>, String> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let mut b = MicrosoftAzureBuilder::from_env().with_container_name(container);
    if let Some(e) = endpoint {
        let emulator = b
            .get_config_value(&AzureConfigKey::UseEmulator)
            .is_some_and(|v| {
                // object_store's own reading of a boolean.
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "1" | "true" | "on" | "yes" | "y"
                )
            });
        if emulator {
            return Err(format!(
                "endpoint {e} is ignored in emulator mode (AZURE_STORAGE_USE_EMULATOR): \
                 set AZURITE_BLOB_STORAGE_URL instead, or unset the emulator flag and \
                 give the account name and key"
            ));
        }
        b = b
            .with_endpoint(e.trim_end_matches('/').to_string())
            .with_allow_http(e.starts_with("http://"));
    }
    Ok(Arc::new(b.build().map_err(|e| e.to_string())?))
}

impl Store for CloudStore {
    fn label(&self) -> &str {
        &self.label
    }

    fn put_if_absent(&self, name: &str, src: &Path) -> io::Result<bool> {
        self.runtime.block_on(self.put_async(name, src))
    }

    /// Puts go out several at a time (each waits on the network), in waves
    /// of at most [`PUT_WAVE`] shares and [`PUT_WAVE_BYTES`] bytes held in
    /// memory; a bigger share goes alone.
    fn put_all_if_absent(&self, items: &[(&str, &Path)]) -> Vec<io::Result<bool>> {
        let mut results = Vec::with_capacity(items.len());
        let mut start = 0;
        while start < items.len() {
            let (mut end, mut bytes) = (start, 0);
            while end < items.len() && end - start < PUT_WAVE {
                let len = std::fs::metadata(items[end].1).map_or(0, |m| m.len());
                if end > start && bytes + len > PUT_WAVE_BYTES {
                    break;
                }
                bytes += len;
                end += 1;
            }
            let wave = items[start..end]
                .iter()
                .map(|(name, src)| self.put_async(name, src));
            results.extend(self.runtime.block_on(futures::future::join_all(wave)));
            start = end;
        }
        results
    }

    fn get(&self, name: &str, dest: &Path) -> io::Result<bool> {
        let path = self.path(name)?;
        self.runtime.block_on(async {
            let result = match self.store.get(&path).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(to_io(e)),
            };
            // A share: readable by its owner only.
            let mut file = std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true),
                0o600,
            )
            .open(dest)?;
            let mut stream = result.into_stream();
            while let Some(chunk) = stream.next().await {
                file.write_all(&chunk.map_err(to_io)?)?;
            }
            file.flush()?;
            Ok(true)
        })
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&self.prefix)).try_collect())
            .map_err(to_io)?;
        let mut names: Vec<String> = metas
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .filter(|n| valid_name(n))
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> io::Result<bool> {
        let path = self.path(name)?;
        self.runtime.block_on(async {
            match self.store.head(&path).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(to_io(e)),
            }
            self.store.delete(&path).await.map_err(to_io)?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(url: &str, region: Option<&str>) -> String {
        match CloudStore::open("s", url, None, region) {
            Ok(_) => panic!("{url} opened"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn region_is_for_s3_only() {
        for url in ["gs://bucket/p", "az://container/p"] {
            let e = refusal(url, Some("eu-west-1"));
            assert!(
                e.starts_with("store s: ") && e.contains("`region` applies to s3://"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_bucket_is_required() {
        for url in ["s3://", "gs:///prefix", "az:///prefix"] {
            let e = refusal(url, None);
            assert!(e.contains("no bucket or container"), "{e}");
        }
    }
}
