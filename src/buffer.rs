//! Byte buffers aligned to 64 bytes, so that SIMD kernels may use aligned
//! (and non-temporal) stores on them. Built on bytemuck: no unsafe here.

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A zeroed byte buffer whose start is 64-byte aligned.
#[derive(Clone)]
pub struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes, 64-byte aligned.
    pub fn zeroed(len: usize) -> Self {
        Self {
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
}

impl zeroize::Zeroize for AlignedBuf {
    fn zeroize(&mut self) {
        bytemuck::cast_slice_mut::<Line, u8>(&mut self.lines).zeroize();
    }
}

/// Reads until `buf` is full or the source ends.
pub fn read_up_to(r: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_sized() {
        for len in [0, 1, 63, 64, 65, 1 << 20] {
            let b = AlignedBuf::zeroed(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % 64, 0);
            assert!(b.iter().all(|&x| x == 0));
        }
    }
}

/// Byte buffers kept for the next user: an archive restore rebuilds
/// thousands of small objects, and a fresh buffer for each share of each
/// one costs a page fault and a cleared page per 4 KiB (a fifth of a
/// restore's time before this pool). At most [`POOL_BYTES`] are kept.
static POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// The most bytes of capacity the pool keeps.
pub const POOL_BYTES: usize = 64 << 20;

/// A buffer of `len` bytes from the pool when it has one large enough.
/// Given back when dropped; a `secret` one (plaintext) is zeroized first,
/// so what a buffer holds when taken is zeros or the bytes of an earlier
/// buffer that was not secret (share bytes): callers overwrite it.
pub struct PooledBuf {
    /// Always whole: pooled buffers keep their full length, so that taking
    /// one fills nothing.
    buf: Vec<u8>,
    /// The bytes in use, `buf[..used]`.
    used: usize,
    secret: bool,
}

impl PooledBuf {
    /// A buffer of `len` bytes to be overwritten (see the type): the
    /// smallest pooled one that is long enough, or a new one.
    pub fn for_overwrite(len: usize, secret: bool) -> Self {
        let reused = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            pool.iter()
                .enumerate()
                .filter(|(_, b)| b.len() >= len)
                .min_by_key(|(_, b)| b.len())
                .map(|(i, _)| i)
                .map(|i| pool.swap_remove(i))
        };
        let buf = reused.unwrap_or_else(|| vec![0u8; len]);
        Self {
            buf,
            used: len,
            secret,
        }
    }
}

impl std::ops::Deref for PooledBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.used]
    }
}

impl std::ops::DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.used]
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if self.secret {
            // Only what this use could write: no pooled buffer holds
            // plaintext anywhere (every secret use is wiped here), so the
            // bytes past `used` are zeros or an earlier use's share bytes.
            zeroize::Zeroize::zeroize(&mut self.buf[..self.used]);
        }
        let buf = std::mem::take(&mut self.buf);
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let kept: usize = pool.iter().map(Vec::len).sum();
        if kept + buf.len() <= POOL_BYTES {
            pool.push(buf);
        }
    }
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    #[test]
    fn a_secret_buffer_comes_back_zeroized() {
        {
            let mut b = PooledBuf::for_overwrite(1000, true);
            b.fill(0xAA);
        }
        // Whichever buffer the pool hands out (tests run in parallel),
        // none holds the secret bytes.
        for _ in 0..4 {
            let b = PooledBuf::for_overwrite(900, false);
            assert_eq!(b.len(), 900);
            assert!(b.iter().all(|&x| x != 0xAA));
        }
    }
}
