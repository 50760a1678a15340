//! S3 (and S3-compatible) stores through `object_store` (feature `aws`).
//!
//! `s3://BUCKET/PREFIX`: objects are `PREFIX/NAME`. Writes are create-only
//! (`PutMode::Create`, an `If-None-Match: *` put): the server refuses an
//! existing name with 412, and a put either lands whole or not at all, so a
//! killed run never leaves half a share visible. Endpoint and region come
//! from the store's configuration or the environment (`AWS_ENDPOINT`,
//! `AWS_REGION`); credentials only from the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), never from umbra.toml.
//!
//! A share is read into memory for its put (one object's share at a time);
//! gets are streamed to the destination file.

use std::io::{self, Write};
use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};

use super::store::{Store, valid_name};
use super::{ArchiveError, Result};

pub struct S3Store {
    label: String,
    prefix: ObjectPath,
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        other => io::Error::other(other),
    }
}

impl S3Store {
    pub fn open(
        label: &str,
        url: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self> {
        let bad = |reason: String| ArchiveError::Unsupported(format!("store {label}: {reason}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad(format!("{url} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad(format!("{url}: no bucket")));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(e) = endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        if let Some(r) = region {
            b = b.with_region(r);
        }
        let store = b.build().map_err(|e| bad(e.to_string()))?;
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

impl Store for S3Store {
    fn label(&self) -> &str {
        &self.label
    }

    fn put_if_absent(&self, name: &str, src: &Path) -> io::Result<bool> {
        let path = self.path(name)?;
        let bytes = std::fs::read(src)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .runtime
            .block_on(self.store.put_opts(&path, bytes.into(), opts))
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(to_io(e)),
        }
    }

    fn get(&self, name: &str, dest: &Path) -> io::Result<bool> {
        let path = self.path(name)?;
        self.runtime.block_on(async {
            let result = match self.store.get(&path).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(to_io(e)),
            };
            let mut file = std::fs::File::create(dest)?;
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
