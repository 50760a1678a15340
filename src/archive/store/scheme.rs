//! Which store a URL opens: a path or `file://` a local directory, `s3://`,
//! `gs://` and `az://` a cloud store when its Cargo feature is built in.

use std::path::Path;

use super::contract::Store;
use super::local::LocalStore;
use crate::archive::error::{ArchiveError, Result};

/// Cloud URL schemes, the Cargo feature that builds each in, and whether
/// this build has it.
const CLOUD_SCHEMES: [(&str, &str, bool); 3] = [
    ("s3", "aws", cfg!(feature = "aws")),
    ("gs", "gcp", cfg!(feature = "gcp")),
    ("az", "azure", cfg!(feature = "azure")),
];

/// Opens the store at `url`: a path (relative to `base`), `file://PATH`, or
/// a cloud store, `s3://BUCKET/PREFIX` (feature `aws`), `gs://BUCKET/PREFIX`
/// (feature `gcp`) or `az://CONTAINER/PREFIX` (feature `azure`), with an
/// optional endpoint (and, for S3, region).
pub fn open(
    label: &str,
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    base: &Path,
) -> Result<Box<dyn Store>> {
    if let Some((scheme, _)) = url.split_once("://")
        && scheme != "file"
    {
        return match CLOUD_SCHEMES.iter().find(|s| s.0 == scheme) {
            Some(&(_, _, true)) => open_cloud(label, url, endpoint, region),
            Some(&(_, feature, false)) => Err(ArchiveError::Unsupported(format!(
                "store {label}: {scheme}:// stores need umbra built with \
                 `--features {feature}` (or `--features cloud` for all of them)"
            ))),
            None => Err(ArchiveError::Unsupported(format!(
                "store {label}: {scheme}:// stores are not implemented; use a local \
                 directory, s3://, gs:// or az://"
            ))),
        };
    }
    let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
    let root = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    Ok(Box::new(LocalStore::new(label, root)))
}

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn open_cloud(
    label: &str,
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Result<Box<dyn Store>> {
    Ok(Box::new(super::cloud::CloudStore::open(
        label, url, endpoint, region,
    )?))
}

/// Never called: no scheme is built in without a cloud feature.
#[cfg(not(any(feature = "aws", feature = "gcp", feature = "azure")))]
fn open_cloud(
    label: &str,
    url: &str,
    _endpoint: Option<&str>,
    _region: Option<&str>,
) -> Result<Box<dyn Store>> {
    Err(ArchiveError::Unsupported(format!(
        "store {label}: {url}: this umbra has no cloud stores built in"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_are_refused_honestly() {
        let e = open("s", "ftp://host/prefix", None, None, Path::new("."))
            .err()
            .unwrap();
        let e = e.to_string();
        assert!(
            e.contains("store s: ftp:// stores are not implemented"),
            "{e}"
        );
    }

    /// Each cloud scheme without its feature names the feature to build
    /// with; with it, the URL reaches the cloud store's own checks.
    #[test]
    fn cloud_schemes_need_their_feature() {
        for (scheme, feature, built) in CLOUD_SCHEMES {
            let url = format!("{scheme}://bucket/prefix");
            let opened = open("s", &url, None, None, Path::new("."));
            if built {
                // Building a client may still fail for want of credentials
                // in this environment, but never with the feature hint.
                if let Err(e) = opened {
                    assert!(!e.to_string().contains("--features"), "{e}");
                }
            } else {
                let e = opened.err().expect("refused").to_string();
                assert!(
                    e.contains(&format!(
                        "store s: {scheme}:// stores need umbra built with `--features {feature}`"
                    )),
                    "{e}"
                );
            }
        }
    }
}
