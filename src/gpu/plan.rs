//! How a job is cut up: objects into pieces of whole 64-byte keystream
//! blocks, pieces into slices that fit the device, slices into workgroups.

use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};

/// Bytes of one keystream block; slices are whole blocks.
pub(super) const BLOCK_BYTES: usize = 64;

/// Invocations per workgroup; must match `@workgroup_size` in the shaders.
pub(super) const WORKGROUP_SIZE: u32 = 64;

/// Output rows per invocation of the apply pass; must match `GROUP_ROWS` in
/// `shaders/apply.wgsl`.
pub(super) const GROUP_ROWS: usize = 8;

/// Bytes of the `Params` uniform (see `shaders/bindings.wgsl`).
pub(super) const PARAMS_BYTES: usize = 16;

/// The `Params` uniform of `shaders/bindings.wgsl`, little-endian.
pub(super) fn params_bytes(words: u32, rows: u32, cols: u32, pieces: u32) -> [u8; PARAMS_BYTES] {
    let mut bytes = [0u8; PARAMS_BYTES];
    for (dst, w) in bytes.chunks_exact_mut(4).zip([words, rows, cols, pieces]) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
    bytes
}

/// One object of a job: a split (key, offset, secret) or an apply (inputs),
/// and where its outputs go.
pub(super) struct Object<'j, 'i, 'o> {
    /// Split only.
    pub(super) key: Option<&'j ObjectKey>,
    /// Byte offset of the data in the object's shared stream (split; 0 for apply).
    pub(super) offset: u64,
    /// Streams that go up: the secret for split, the inputs for apply.
    /// An upload shorter than `len` is padded with zeros (the compact
    /// scheme's last stripes).
    pub(super) uploads: &'j [&'i [u8]],
    /// An output shorter than `len` gets only its own bytes (the compact
    /// scheme's last stripes of a combine).
    pub(super) outputs: &'j mut [&'o mut [u8]],
    pub(super) len: usize,
    /// The compact scheme: one block, whose stripes are encrypted on the
    /// device (`shaders/compact.wgsl`).
    pub(super) cipher: Option<Cipher<'j>>,
}

/// Which rows the cipher pass of a compact job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CipherRows {
    /// The input rows, before the matrix: a split (disperse).
    Inputs,
    /// The output rows, after the matrix: a combine (undisperse).
    Outputs,
}

/// One block of the compact scheme as an object: its t stripes of `len`
/// bytes are the rows that the cipher pass encrypts or decrypts.
#[derive(Clone, Copy)]
pub(super) struct Cipher<'j> {
    pub(super) key: &'j ObjectKey,
    /// Shared-stream byte offset of the block (stripe 0's first byte).
    pub(super) offset: u64,
    /// The block's bytes: stripe r holds bytes r * len .. of it, the rest
    /// of the t * len is zero padding.
    pub(super) block_len: usize,
    pub(super) rows: CipherRows,
}

impl Object<'_, '_, '_> {
    /// Bytes before the data in its first keystream block.
    pub(super) fn skip(&self) -> usize {
        (self.offset % BLOCK_BYTES as u64) as usize
    }
}

/// A run of whole blocks of one object's stream, placed in a slice.
#[derive(Debug, Clone, Copy)]
pub(super) struct PieceSpec {
    pub(super) object: usize,
    /// Data bytes `data_start..data_start + data_len` of the object's streams...
    pub(super) data_start: usize,
    pub(super) data_len: usize,
    /// ...sit at this byte of each slice row...
    pub(super) at: usize,
    /// ...in blocks `slice_block..slice_block + blocks` of the slice,
    pub(super) slice_block: u32,
    pub(super) blocks: u32,
    /// which are keystream blocks `stream_block..` of the object.
    pub(super) stream_block: u64,
}

/// Bytes of one `Piece` entry of `shaders/bindings.wgsl`.
pub(super) const PIECE_BYTES: usize = 64;

/// Entries of the piece table; must match `MAX_PIECES` in the shader.
pub(super) const MAX_PIECES: usize = 1024;

impl PieceSpec {
    /// The shader's `Piece` for this piece of `object`, little-endian;
    /// holds the key: wipe after use.
    pub(super) fn table_entry(&self, object: &Object<'_, '_, '_>) -> [u8; PIECE_BYTES] {
        let mut bytes = [0u8; PIECE_BYTES];
        if let Some(key) = object.key.or(object.cipher.map(|c| c.key)) {
            bytes[..32].copy_from_slice(key.expose());
        }
        let mut put = |at: usize, word: u32| bytes[at..at + 4].copy_from_slice(&word.to_le_bytes());
        // A split's keystream block, or a compact piece's stream byte offset.
        let position = match &object.cipher {
            None => self.stream_block,
            Some(c) => c.offset + self.data_start as u64,
        };
        put(32, position as u32);
        put(36, (position >> 32) as u32);
        put(40, self.slice_block);
        if let Some(c) = &object.cipher {
            // Fit in u32: the GPU takes blocks below 2^31 bytes.
            put(44, object.len as u32);
            put(48, (c.block_len - self.data_start) as u32);
            put(52, self.data_len as u32);
        }
        bytes
    }
}

/// The pieces of one slice.
#[derive(Debug, Default)]
pub(super) struct SlicePlan {
    pub(super) pieces: Vec<PieceSpec>,
    pub(super) blocks: u32,
}

impl SlicePlan {
    pub(super) fn words(&self) -> u32 {
        self.blocks * (BLOCK_BYTES / 4) as u32
    }

    pub(super) fn row_bytes(&self) -> usize {
        self.blocks as usize * BLOCK_BYTES
    }
}

/// Cuts the objects into slices of at most `slice_blocks` blocks and
/// `MAX_PIECES` pieces: objects are packed one after the other, and one that
/// does not fit the rest of a slice continues in the next.
pub(super) fn plan_slices(objects: &[Object<'_, '_, '_>], slice_blocks: u32) -> Vec<SlicePlan> {
    let mut slices = Vec::new();
    let mut current = SlicePlan::default();
    for (index, object) in objects.iter().enumerate() {
        if object.len == 0 {
            continue;
        }
        let skip = object.skip();
        let end = skip + object.len; // in the object's block-aligned stream
        let mut pos = 0usize; // a multiple of 64
        while pos < end {
            if current.blocks == slice_blocks || current.pieces.len() == MAX_PIECES {
                slices.push(std::mem::take(&mut current));
            }
            let free = (slice_blocks - current.blocks) as usize * BLOCK_BYTES;
            let piece_end = end.min(pos + free);
            let data_from = pos.max(skip);
            let blocks = (piece_end - pos).div_ceil(BLOCK_BYTES) as u32;
            current.pieces.push(PieceSpec {
                object: index,
                data_start: data_from - skip,
                data_len: piece_end - data_from,
                at: current.blocks as usize * BLOCK_BYTES + (data_from - pos),
                slice_block: current.blocks,
                blocks,
                stream_block: object.offset / BLOCK_BYTES as u64 + (pos / BLOCK_BYTES) as u64,
            });
            current.blocks += blocks;
            pos = piece_end.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        }
    }
    if !current.pieces.is_empty() {
        slices.push(current);
    }
    slices
}

/// Workgroups for `items` invocations as a 2D grid inside the per-dimension
/// limit.
pub(super) fn grid(items: u32, max_per_dim: u32) -> (u32, u32) {
    let groups = items.div_ceil(WORKGROUP_SIZE).max(1);
    let x = groups.min(max_per_dim.max(1));
    (x, groups.div_ceil(x))
}

/// A split job as an [`Object`], its shapes checked.
pub(super) fn split_object<'j, 'i, 'o>(
    plan: &SplitPlan,
    key: &'j ObjectKey,
    offset: u64,
    uploads: &'j [&'i [u8]; 1],
    shares: &'j mut [&'o mut [u8]],
) -> Object<'j, 'i, 'o> {
    let len = uploads[0].len();
    assert_eq!(shares.len(), plan.threshold().n(), "one output per share");
    assert!(
        shares.iter().all(|s| s.len() == len),
        "shares as long as the secret"
    );
    Object {
        key: Some(key),
        offset,
        uploads,
        outputs: shares,
        len,
        cipher: None,
    }
}

/// An apply job as an [`Object`], its shapes checked.
pub(super) fn apply_object<'j, 'i, 'o>(
    matrix: &Matrix,
    inputs: &'j [&'i [u8]],
    outputs: &'j mut [&'o mut [u8]],
) -> Object<'j, 'i, 'o> {
    assert_eq!(inputs.len(), matrix.cols(), "one input per matrix column");
    assert_eq!(outputs.len(), matrix.rows(), "one output per matrix row");
    let len = inputs.first().map_or(0, |i| i.len());
    assert!(
        inputs.iter().all(|i| i.len() == len),
        "inputs of equal length"
    );
    assert!(
        outputs.iter().all(|o| o.len() == len),
        "outputs as long as inputs"
    );
    Object {
        key: None,
        offset: 0,
        uploads: inputs,
        outputs,
        len,
        cipher: None,
    }
}

/// The largest compact block the GPU takes (its offsets within a block are
/// u32 on the device); larger blocks run by the definition.
pub(super) const MAX_CIPHER_BLOCK: usize = (1 << 31) - 1;

/// One block of a compact split as an [`Object`]: `stripes` are the t
/// plaintext stripes of the block at `offset` (the last ones short or
/// empty), `shares` the n segments of `stripe` bytes they disperse into.
pub(super) fn disperse_object<'j, 'i, 'o>(
    plan: &SplitPlan,
    key: &'j ObjectKey,
    offset: u64,
    block_len: usize,
    stripes: &'j [&'i [u8]],
    shares: &'j mut [&'o mut [u8]],
) -> Object<'j, 'i, 'o> {
    let len = shares.first().map_or(0, |s| s.len());
    assert_eq!(stripes.len(), plan.threshold().t(), "t stripes");
    assert_eq!(shares.len(), plan.threshold().n(), "one output per share");
    assert!(shares.iter().all(|s| s.len() == len) && block_len <= MAX_CIPHER_BLOCK);
    Object {
        key: None,
        offset: 0,
        uploads: stripes,
        outputs: shares,
        len,
        cipher: Some(Cipher {
            key,
            offset,
            block_len,
            rows: CipherRows::Inputs,
        }),
    }
}

/// One block of a compact combine as an [`Object`]: t share segments in,
/// the block's t plaintext stripes out (the last ones short or empty).
pub(super) fn undisperse_object<'j, 'i, 'o>(
    inverse: &Matrix,
    key: &'j ObjectKey,
    offset: u64,
    block_len: usize,
    shares: &'j [&'i [u8]],
    stripes: &'j mut [&'o mut [u8]],
) -> Object<'j, 'i, 'o> {
    let len = shares.first().map_or(0, |s| s.len());
    assert_eq!(shares.len(), inverse.cols(), "one input per matrix column");
    assert_eq!(stripes.len(), inverse.rows(), "one stripe per matrix row");
    assert!(shares.iter().all(|s| s.len() == len) && block_len <= MAX_CIPHER_BLOCK);
    Object {
        key: None,
        offset: 0,
        uploads: shares,
        outputs: stripes,
        len,
        cipher: Some(Cipher {
            key,
            offset,
            block_len,
            rows: CipherRows::Outputs,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces cover every data byte of every object exactly once, in order,
    /// on whole blocks, inside the slice and piece limits.
    #[test]
    fn slices_cover_objects_exactly() {
        let key = ObjectKey::from_bytes([1; 32]);
        let cases: Vec<(Vec<(u64, usize)>, u32)> = vec![
            (vec![(0, 0)], 4),
            (vec![(0, 1), (63, 1), (64, 64), (5, 300)], 4),
            (vec![(61, 1000), (0, 256), (1 << 38, 65)], 3),
            (vec![(7, 10_000)], 1),
            // More objects than one piece table holds.
            (
                (0..1500).map(|i| (i as u64 * 3, 1 + i % 5)).collect(),
                1 << 20,
            ),
        ];
        for (objects, slice_blocks) in &cases {
            let (objects, slice_blocks) = (objects.as_slice(), *slice_blocks);
            let uploads: Vec<[&[u8]; 1]> = objects.iter().map(|_| [&[][..]]).collect();
            let mut outs: Vec<Vec<&mut [u8]>> = objects.iter().map(|_| Vec::new()).collect();
            let objs: Vec<Object<'_, '_, '_>> = objects
                .iter()
                .zip(&uploads)
                .zip(outs.iter_mut())
                .map(|((&(offset, len), up), out)| Object {
                    key: Some(&key),
                    offset,
                    uploads: up,
                    outputs: out.as_mut_slice(),
                    len,
                    cipher: None,
                })
                .collect();
            let slices = plan_slices(&objs, slice_blocks);
            let mut covered: Vec<usize> = vec![0; objects.len()];
            for slice in &slices {
                assert!(slice.blocks <= slice_blocks && slice.pieces.len() <= MAX_PIECES);
                let mut next_block = 0;
                for p in &slice.pieces {
                    let (offset, _) = objects[p.object];
                    assert_eq!(p.slice_block, next_block, "pieces back to back");
                    next_block += p.blocks;
                    assert_eq!(p.data_start, covered[p.object], "in order, no gap");
                    covered[p.object] += p.data_len;
                    // The data's stream position is where its block says.
                    let stream_pos = offset + p.data_start as u64;
                    let block_pos = p.at - p.slice_block as usize * BLOCK_BYTES;
                    assert_eq!(
                        stream_pos,
                        p.stream_block * BLOCK_BYTES as u64 + block_pos as u64
                    );
                    assert!(block_pos + p.data_len <= p.blocks as usize * BLOCK_BYTES);
                }
                assert_eq!(next_block, slice.blocks);
            }
            let lens: Vec<usize> = objects.iter().map(|&(_, l)| l).collect();
            assert_eq!(
                covered, lens,
                "{objects:?} in slices of {slice_blocks} blocks"
            );
        }
    }
}
