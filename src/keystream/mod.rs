//! The coefficient keystream (docs/DESIGN.md, section 4).
//!
//! Coefficient `a_j` (j = 1..t-1) at byte offset `o` of the shared stream is
//! byte `o mod 64` of the ChaCha20 (RFC 8439, 20 rounds) block with the
//! object's key, block counter `(o / 64) mod 2^32` and nonce words
//! `(j, (o / 64) >> 32, 0)`, little-endian.
//!
//! Because it is a pure function of (key, j, offset), any chunk of any
//! coefficient stream can be computed on its own, on any backend, and the
//! CPU, SIMD and GPU paths agree bit for bit. Every byte value, zero
//! included, is equally likely.

#[cfg(target_arch = "x86_64")]
mod avx512;

use chacha20::cipher::array::Array;
use chacha20::cipher::{KeyIvInit, StreamCipherCore};
use chacha20::variants::Ietf;
use chacha20::{ChaChaCore, R20};
use rayon::prelude::*;
use zeroize::Zeroizing;

/// Bytes in one ChaCha20 block.
pub const BLOCK: usize = 64;

/// A per-object 256-bit key. Drawn from the operating system, kept only in
/// memory, wiped on drop, never printed (no `Debug`), never serialised.
pub struct ObjectKey(Zeroizing<[u8; 32]>);

impl ObjectKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut())?;
        Ok(Self(key))
    }

    /// A key chosen by the caller. For tests and test vectors only: the CLI
    /// never takes a key, since a key and one share together reveal the object.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes, for backends that compute the keystream themselves
    /// (the GPU uploads them as a uniform).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectKey(<redacted>)")
    }
}

/// Writes consecutive raw ChaCha20 blocks: block counter `counter`, then
/// `counter + 1`, ..., with the 96-bit nonce given as three little-endian
/// words. `out` may end in a partial block. The caller keeps the counter
/// from wrapping (see [`fill`]).
pub fn raw_blocks(key: &ObjectKey, nonce: [u32; 3], counter: u32, out: &mut [u8]) {
    let out = raw_blocks_simd(key, nonce, counter, out);
    if out.1.is_empty() {
        return;
    }
    let (counter, out) = out;
    let mut nonce_bytes = [0u8; 12];
    for (dst, word) in nonce_bytes.chunks_exact_mut(4).zip(nonce) {
        dst.copy_from_slice(&word.to_le_bytes());
    }
    // `core` holds the key in its state; the crate's `zeroize` feature wipes
    // it on drop.
    let mut core = ChaChaCore::<R20, Ietf>::new(key.expose().into(), &nonce_bytes.into());
    core.set_block_pos(counter);
    let (blocks, tail) = Array::slice_as_chunks_mut(out);
    core.write_keystream_blocks(blocks);
    if !tail.is_empty() {
        let mut block = Zeroizing::new([0u8; BLOCK]);
        core.write_keystream_block((&mut *block).into());
        let n = tail.len();
        tail.copy_from_slice(&block[..n]);
    }
}

/// Whole groups of sixteen blocks with our own AVX-512 code where the CPU
/// has it (about 12 % faster than the crate's AVX-512 backend on the AMD
/// machine of BENCHMARKS.md); returns the counter and the part left over.
#[cfg(target_arch = "x86_64")]
fn raw_blocks_simd<'a>(
    key: &ObjectKey,
    nonce: [u32; 3],
    counter: u32,
    out: &'a mut [u8],
) -> (u32, &'a mut [u8]) {
    if out.len() < avx512::BYTES || !std::arch::is_x86_feature_detected!("avx512f") {
        return (counter, out);
    }
    let mut words = Zeroizing::new([0u32; 8]);
    for (w, bytes) in words.iter_mut().zip(key.expose().chunks_exact(4)) {
        *w = u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
    }
    let groups = out.len() / avx512::BYTES;
    let (whole, rest) = out.split_at_mut(groups * avx512::BYTES);
    for (g, chunk) in whole.chunks_exact_mut(avx512::BYTES).enumerate() {
        let chunk: &mut [u8; avx512::BYTES] = chunk.try_into().expect("one group");
        // SAFETY: AVX-512F was detected just above.
        unsafe { avx512::blocks16(&words, nonce, counter.wrapping_add(16 * g as u32), chunk) };
    }
    (counter.wrapping_add(16 * groups as u32), rest)
}

#[cfg(not(target_arch = "x86_64"))]
fn raw_blocks_simd<'a>(
    _: &ObjectKey,
    _: [u32; 3],
    counter: u32,
    out: &'a mut [u8],
) -> (u32, &'a mut [u8]) {
    (counter, out)
}

/// Fills `out` with coefficient stream `j` from byte offset `offset` on.
///
/// Any offset and length are allowed: a partial first block goes through a
/// small wiped buffer, and a run that crosses a 2^32-block boundary moves to
/// the next nonce there, as the layout says.
pub fn fill(key: &ObjectKey, j: u32, offset: u64, out: &mut [u8]) {
    let mut done = 0usize;
    while done < out.len() {
        let pos = offset + done as u64;
        let block_index = pos / BLOCK as u64;
        let counter = block_index as u32; // mod 2^32
        let nonce = [j, (block_index >> 32) as u32, 0];
        let skip = (pos % BLOCK as u64) as usize;
        if skip != 0 {
            let mut block = Zeroizing::new([0u8; BLOCK]);
            raw_blocks(key, nonce, counter, &mut block[..]);
            let take = (BLOCK - skip).min(out.len() - done);
            out[done..done + take].copy_from_slice(&block[skip..skip + take]);
            done += take;
            continue;
        }
        // Whole run from a block start up to the counter's wrap.
        let blocks_in_span = (1u64 << 32) - counter as u64;
        let span_bytes = blocks_in_span.saturating_mul(BLOCK as u64);
        let want = ((out.len() - done) as u64).min(span_bytes) as usize;
        raw_blocks(key, nonce, counter, &mut out[done..done + want]);
        done += want;
    }
}

/// The compact scheme's cipher stream: keystream index 0, which Shamir
/// never uses for a coefficient (docs/DESIGN.md sections 4 and 8).
pub const CIPHER_STREAM: u32 = 0;

/// Bytes of keystream per rayon task when a block is XORed on its own.
const XOR_TASK: usize = 64 << 10;

/// XORs `data`, which sits at byte `offset` of the shared stream, with the
/// cipher stream of `key`: encryption and decryption alike.
pub fn xor_cipher(key: &ObjectKey, offset: u64, data: &mut [u8]) {
    data.par_chunks_mut(XOR_TASK)
        .enumerate()
        .for_each(|(k, chunk)| xor_cipher_serial(key, offset + (k * XOR_TASK) as u64, chunk));
}

/// [`xor_cipher`] on the calling thread, 4 KiB of keystream at a time.
pub fn xor_cipher_serial(key: &ObjectKey, offset: u64, data: &mut [u8]) {
    let mut ks = Zeroizing::new([0u8; 4096]);
    xor_cipher_with(key, offset, data, &mut ks[..]);
}

/// [`xor_cipher_serial`] with the keystream made in `scratch` (not empty),
/// which the caller wipes: a caller that XORs many small pieces keeps one
/// buffer for all of them instead of wiping one per piece.
pub fn xor_cipher_with(key: &ObjectKey, offset: u64, data: &mut [u8], scratch: &mut [u8]) {
    let step = scratch.len();
    for (k, piece) in data.chunks_mut(step).enumerate() {
        let ks = &mut scratch[..piece.len()];
        fill(key, CIPHER_STREAM, offset + (k * step) as u64, ks);
        for (p, s) in piece.iter_mut().zip(ks.iter()) {
            *p ^= s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8439 section 2.3.2: the block function with key 00..1f, nonce
    /// 00:00:00:09:00:00:00:4a:00:00:00:00 and counter 1.
    #[test]
    fn rfc8439_block_function() {
        let key = ObjectKey::from_bytes(core::array::from_fn(|i| i as u8));
        let expected = hex("10 f1 e7 e4 d1 3b 59 15 50 0f dd 1f a3 20 71 c4
             c7 d1 f4 c7 33 c0 68 03 04 22 aa 9a c3 d4 6c 4e
             d2 82 64 46 07 9f aa 09 14 c2 d7 05 d9 8b 02 a2
             b5 12 9c d1 de 16 4e b9 cb d0 83 e8 a2 50 3c 4e");
        let mut out = [0u8; 64];
        raw_blocks(&key, [0x0900_0000, 0x4a00_0000, 0], 1, &mut out);
        assert_eq!(out.to_vec(), expected);
    }

    /// RFC 8439 section 2.4.2: the 114-byte "sunscreen" keystream, counter 1,
    /// nonce 00:00:00:00:00:00:00:4a:00:00:00:00, recovered from its
    /// plaintext and ciphertext.
    #[test]
    fn rfc8439_encryption_keystream() {
        let key = ObjectKey::from_bytes(core::array::from_fn(|i| i as u8));
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let ciphertext = hex("6e 2e 35 9a 25 68 f9 80 41 ba 07 28 dd 0d 69 81
             e9 7e 7a ec 1d 43 60 c2 0a 27 af cc fd 9f ae 0b
             f9 1b 65 c5 52 47 33 ab 8f 59 3d ab cd 62 b3 57
             16 39 d6 24 e6 51 52 ab 8f 53 0c 35 9f 08 61 d8
             07 ca 0d bf 50 0d 6a 61 56 a3 8e 08 8a 22 b6 5e
             52 bc 51 4d 16 cc f8 06 81 8c e9 1a b7 79 37 36
             5a f9 0b bf 74 a3 5b e6 b4 0b 8e ed f2 78 5e 42
             87 4d");
        let mut ks = vec![0u8; plaintext.len()];
        raw_blocks(&key, [0, 0x4a00_0000, 0], 1, &mut ks);
        let got: Vec<u8> = plaintext.iter().zip(&ks).map(|(p, k)| p ^ k).collect();
        assert_eq!(got, ciphertext);
    }

    /// Any sub-range, at any alignment, equals the same range of one long fill.
    #[test]
    fn chunks_agree_with_whole() {
        let key = ObjectKey::from_bytes([7u8; 32]);
        let mut whole = vec![0u8; 5000];
        fill(&key, 3, 1000, &mut whole);
        for (start, len) in [(0, 1), (1, 63), (63, 2), (64, 64), (100, 4000), (4999, 1)] {
            let mut part = vec![0u8; len];
            fill(&key, 3, 1000 + start as u64, &mut part);
            assert_eq!(part, whole[start..start + len], "start {start} len {len}");
        }
    }

    /// The layout of docs/DESIGN.md (section 4): offset o of stream j is byte o mod 64 of the
    /// block with counter (o/64) mod 2^32 and nonce (j, (o/64) >> 32, 0).
    #[test]
    fn fill_follows_the_layout() {
        let key = ObjectKey::from_bytes(core::array::from_fn(|i| (i * 7) as u8));
        for (j, block_index) in [
            (1u32, 0u64),
            (2, 5),
            (255, (1 << 32) - 1),
            (3, 1 << 32),
            (4, (7 << 32) | 9),
        ] {
            let mut raw = [0u8; 64];
            raw_blocks(
                &key,
                [j, (block_index >> 32) as u32, 0],
                block_index as u32,
                &mut raw,
            );
            let mut via_fill = [0u8; 64];
            fill(&key, j, block_index * 64, &mut via_fill);
            assert_eq!(raw, via_fill, "j {j} block {block_index}");
            let mut middle = [0u8; 10];
            fill(&key, j, block_index * 64 + 17, &mut middle);
            assert_eq!(middle, raw[17..27]);
        }
    }

    /// Crossing the 2^32-block boundary moves to the next nonce, as specified.
    #[test]
    fn counter_wrap_changes_nonce() {
        let key = ObjectKey::from_bytes([9u8; 32]);
        let boundary = (1u64 << 32) * 64;
        let mut across = vec![0u8; 256];
        fill(&key, 1, boundary - 128, &mut across);
        let mut before = vec![0u8; 128];
        fill(&key, 1, boundary - 128, &mut before);
        let mut after = vec![0u8; 128];
        fill(&key, 1, boundary, &mut after);
        assert_eq!(&across[..128], &before[..]);
        assert_eq!(&across[128..], &after[..]);
        // The block after the boundary is (counter 0, high 1), not (0, 0).
        let mut first = vec![0u8; 128];
        fill(&key, 1, 0, &mut first);
        assert_ne!(after, first);
    }

    /// Our AVX-512 block function against the chacha20 crate, on every
    /// alignment of group and tail and near the counter's wrap.
    #[test]
    fn simd_blocks_match_the_crate() {
        let key = ObjectKey::from_bytes(core::array::from_fn(|i| (i * 29 + 3) as u8));
        for (counter, len) in [
            (0u32, 1024usize),
            (5, 1024 + 64 + 7),
            (1000, 4096),
            (u32::MAX - 31, 2048),
            (7, 3000),
        ] {
            let nonce = [3, 0x0102_0304, 0];
            let mut ours = vec![0u8; len];
            raw_blocks(&key, nonce, counter, &mut ours);
            let mut nonce_bytes = [0u8; 12];
            for (dst, word) in nonce_bytes.chunks_exact_mut(4).zip(nonce) {
                dst.copy_from_slice(&word.to_le_bytes());
            }
            let mut theirs = vec![0u8; len.next_multiple_of(64)];
            let mut core = ChaChaCore::<R20, Ietf>::new(key.expose().into(), &nonce_bytes.into());
            core.set_block_pos(counter);
            let (blocks, _) = Array::slice_as_chunks_mut(&mut theirs[..]);
            core.write_keystream_blocks(blocks);
            assert_eq!(ours[..], theirs[..len], "counter {counter}, length {len}");
        }
    }

    #[test]
    fn streams_differ_by_coefficient() {
        let key = ObjectKey::from_bytes([1u8; 32]);
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill(&key, 1, 0, &mut a);
        fill(&key, 2, 0, &mut b);
        assert_ne!(a, b);
    }
}
