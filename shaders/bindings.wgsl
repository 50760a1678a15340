// Bindings shared by every umbra compute pipeline (split.wgsl, apply.wgsl).
// CPU twin: the `Params` struct and bind group layout in src/gpu/mod.rs,
// which must keep the same field order and binding numbers.
//
// Byte streams are packed 4 bytes per u32, little-endian: byte k of a row is
// bits 8*(k%4)..8*(k%4)+7 of word k/4. A buffer holds several rows (streams)
// one after the other, `params.words` words apart.

struct Params {
    // The object's ChaCha20 key as eight little-endian words (split only;
    // zeros for apply, and overwritten with zeros after each split).
    key: array<vec4<u32>, 2>,
    // Index of the 64-byte keystream block at word 0 of each row, as a u64
    // (lo, hi): the offset of this slice in the shared stream, over 64.
    block_lo: u32,
    block_hi: u32,
    // Words per row in this slice (a multiple of 16: whole blocks).
    words: u32,
    // Rows of `matrix`: output streams.
    rows: u32,
    // Columns of `matrix`: input streams (t for split, with row 0 the secret).
    cols: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// rows x cols matrix entries, row-major, one GF(2^8) element per u32.
@group(0) @binding(1) var<storage, read> matrix: array<u32>;
// cols rows of `words` words: the input streams.
@group(0) @binding(2) var<storage, read_write> inputs: array<u32>;
// rows rows of `words` words: the output streams.
@group(0) @binding(3) var<storage, read_write> outputs: array<u32>;

// Flat index of an invocation in a 2D grid of 64-wide workgroups: a grid may
// be up to 65,535 groups wide, so large slices spill over into y.
fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.y * (groups.x * 64u) + gid.x;
}
