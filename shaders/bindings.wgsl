// Bindings shared by every umbra compute pipeline (split.wgsl, apply.wgsl,
// compact.wgsl).
// CPU twin: `Params`, `PieceSpec::table_entry` and the bind group layout in
// src/gpu/plan.rs (`params_bytes`, `PieceSpec`) and src/gpu/device.rs (the
// layout), which must keep the same field order and binding numbers.
//
// Byte streams are packed 4 bytes per u32, little-endian: byte k of a row is
// bits 8*(k%4)..8*(k%4)+7 of word k/4. A buffer holds several rows (streams)
// one after the other, `params.words` words apart.

struct Params {
    // Words per row in this slice (a multiple of 16: whole blocks).
    words: u32,
    // Rows of `matrix`: output streams.
    rows: u32,
    // Columns of `matrix`: input streams (t for split, with row 0 the secret).
    cols: u32,
    // Entries of `pieces` in use (split only).
    pieces: u32,
}

// A slice holds one or more pieces: runs of whole keystream blocks of one
// object's shared stream, one after the other (many small objects go into
// one dispatch; a large object spans several slices).
struct Piece {
    // The object's ChaCha20 key as eight little-endian words. Overwritten
    // with zeros after each split.
    key: array<vec4<u32>, 2>,
    // Keystream block index (a u64: lo, hi) of the piece's first block:
    // its offset in the object's shared stream, over 64.
    block_lo: u32,
    block_hi: u32,
    // The piece's first block in the slice; pieces are sorted by it and the
    // first starts at 0.
    start: u32,
    // The compact scheme's cipher pass only (compact.wgsl): a piece is a
    // run of one block's t stripes of `stripe` bytes, one per row, and
    // (block_hi, block_lo) is then the shared-stream byte offset of row 0's
    // first byte (row r starts r * stripe bytes later). Of row r, the first
    // clamp(valid - r * stripe, 0, data_len) bytes are data; the rest is
    // padding that stays zero.
    stripe: u32,
    valid: u32,
    data_len: u32,
    pad0: u32,
    pad1: u32,
}

// Entries of the piece table: 1024 x 64 bytes fills a 64 KiB uniform.
const MAX_PIECES: u32 = 1024u;

@group(0) @binding(0) var<uniform> params: Params;
// rows x cols matrix entries, row-major, one GF(2^8) element per u32.
@group(0) @binding(1) var<storage, read> matrix: array<u32>;
// cols rows of `words` words: the input streams.
@group(0) @binding(2) var<storage, read_write> inputs: array<u32>;
// rows rows of `words` words: the output streams.
@group(0) @binding(3) var<storage, read_write> outputs: array<u32>;
// The pieces of this slice (split only).
@group(0) @binding(4) var<uniform> pieces: array<Piece, MAX_PIECES>;

// The piece that holds block `block` of the slice, by binary search in the
// piece table: public positions only, nothing secret steers it.
fn find_piece(block: u32) -> u32 {
    var lo = 0u;
    var hi = max(params.pieces, 1u);
    // pieces[lo].start <= block < pieces[hi].start (or hi = count).
    while hi - lo > 1u {
        let mid = (lo + hi) / 2u;
        if pieces[mid].start <= block {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// Flat index of an invocation in a 2D grid of 64-wide workgroups: a grid may
// be up to 65,535 groups wide, so large slices spill over into y.
fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.y * (groups.x * 64u) + gid.x;
}
