//! The libgfshare interop format: `NAME.xxx` holds the bare shared bytes of
//! the file at x = xxx (three decimal digits), in the same field (0x11D).
//! `gfsplit` and `gfcombine` (Debian package libgfshare-bin) read and write
//! it. There is no header, no check key and no hash: shares in this format
//! carry no integrity at all, and a wrong share gives wrong bytes silently.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::buffer::AlignedBuf;
use crate::buffer::read_up_to;
use crate::engine::Backend;
use crate::error::{Error, IoContext, Result};
use crate::keystream::ObjectKey;
use crate::output::{self, PendingFile};
use crate::sharing::{SplitPlan, combine_matrix};
use crate::stream::split::DEFAULT_BATCH_BYTES;

/// `NAME.xxx`.
pub fn share_file_name(base: &std::ffi::OsStr, x: u8) -> std::ffi::OsString {
    let mut name = base.to_os_string();
    name.push(format!(".{x:03}"));
    name
}

/// The x of a `NAME.xxx` file.
pub fn parse_x(path: &Path) -> Result<u8> {
    let bad = |reason: &str| Error::BadInput {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .ok_or_else(|| bad("a gfshare file is named NAME.xxx, with x as three digits"))?;
    if ext.len() != 3 || !ext.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "a gfshare file is named NAME.xxx, with x as three digits",
        ));
    }
    match ext.parse::<u16>() {
        Ok(x @ 1..=255) => Ok(x as u8),
        _ => Err(bad("x must be 001 to 255 (000 would be the secret itself)")),
    }
}

/// Splits `input` into bare `NAME.xxx` shares in `out_dir`.
pub fn split_file(
    backend: &dyn Backend,
    plan: &SplitPlan,
    key: &ObjectKey,
    input: &Path,
    out_dir: &Path,
    overwrite: bool,
    on_progress: &mut dyn FnMut(u64),
) -> Result<Vec<PathBuf>> {
    let mut file = crate::error::open_regular(input)?;
    let len = file.metadata().at(input)?.len();
    let base = input.file_name().unwrap_or_default();
    let mut pending = plan
        .xs()
        .iter()
        .map(|&x| PendingFile::create(&out_dir.join(share_file_name(base, x)), overwrite))
        .collect::<Result<Vec<_>>>()?;
    let mut batch = vec![0u8; DEFAULT_BATCH_BYTES];
    let mut outs: Vec<AlignedBuf> = (0..plan.xs().len())
        .map(|_| AlignedBuf::zeroed(DEFAULT_BATCH_BYTES))
        .collect();
    let mut offset = 0u64;
    loop {
        let n = read_up_to(&mut file, &mut batch).at(input)?;
        if n == 0 {
            break;
        }
        let mut refs: Vec<&mut [u8]> = outs.iter_mut().map(|o| &mut o[..n]).collect();
        backend
            .split(plan, key, offset, &batch[..n], &mut refs)
            .map_err(|error| Error::EngineAt {
                path: input.to_path_buf(),
                error,
            })?;
        for (p, out) in pending.iter_mut().zip(&outs) {
            let target = p.target().to_path_buf();
            p.file().write_all(&out[..n]).at(&target)?;
        }
        offset += n as u64;
        on_progress(offset);
    }
    if offset != len {
        return Err(Error::InputChanged {
            path: input.to_path_buf(),
            detail: format!("{len} bytes expected, {offset} read"),
        });
    }
    output::commit_all(pending, overwrite, false)
}

/// Combines bare `NAME.xxx` shares into `output`. Every share given is used
/// (at least t are needed; with more, the result is the same).
pub fn combine_files(
    backend: &dyn Backend,
    paths: &[PathBuf],
    output: &Path,
    overwrite: bool,
    on_progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    if paths.len() < 2 {
        return Err(Error::TooFewShares {
            given: paths.len(),
            t: 2,
        });
    }
    let mut xs = Vec::with_capacity(paths.len());
    let mut files = Vec::with_capacity(paths.len());
    let mut len = None;
    for p in paths {
        let x = parse_x(p)?;
        if let Some(i) = xs.iter().position(|&o| o == x) {
            return Err(Error::DuplicateShare {
                first: paths[i].clone(),
                other: p.clone(),
                x,
            });
        }
        let f = crate::error::open_regular(p)?;
        let l = f.metadata().at(p)?.len();
        match len {
            None => len = Some(l),
            Some(first) if first != l => {
                return Err(Error::BadInput {
                    path: p.clone(),
                    reason: format!(
                        "{l} bytes, but {} has {first}: shares of one file have one length",
                        paths[0].display()
                    ),
                });
            }
            _ => {}
        }
        xs.push(x);
        files.push(f);
    }
    let len = len.unwrap_or(0);
    let matrix = combine_matrix(&xs)?;
    let mut pending = PendingFile::create(output, overwrite)?;
    let mut bufs = vec![vec![0u8; DEFAULT_BATCH_BYTES]; files.len()];
    let mut out = vec![0u8; DEFAULT_BATCH_BYTES];
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset).min(DEFAULT_BATCH_BYTES as u64) as usize;
        for ((f, buf), p) in files.iter().zip(bufs.iter_mut()).zip(paths) {
            f.read_exact_at(&mut buf[..n], offset).at(p)?;
        }
        let inputs: Vec<&[u8]> = bufs.iter().map(|b| &b[..n]).collect();
        backend
            .apply(&matrix, &inputs, &mut [&mut out[..n]])
            .map_err(|error| Error::EngineAt {
                path: paths[0].clone(),
                error,
            })?;
        pending.file().write_all(&out[..n]).at(output)?;
        offset += n as u64;
        on_progress(offset);
    }
    pending.commit(overwrite, false)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_from_names() {
        assert_eq!(parse_x(Path::new("a/scan.dcm.001")).unwrap(), 1);
        assert_eq!(parse_x(Path::new("s.255")).unwrap(), 255);
        assert!(parse_x(Path::new("s.000")).is_err());
        assert!(parse_x(Path::new("s.256")).is_err());
        assert!(parse_x(Path::new("s.12")).is_err());
        assert!(parse_x(Path::new("s")).is_err());
    }
}
