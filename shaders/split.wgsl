// Split, part 1: the random coefficient streams a_1..a_{t-1}, computed on the
// GPU from the keys in the piece table, so only the secret goes up and only the
// shares come down. Part 2 is apply.wgsl with the n x t Vandermonde matrix:
// shares = V * (secret, a_1, ..., a_{t-1}).
// CPU twin: src/keystream/ (`fill`), driven by `CpuBackend::split` in
// src/engine/cpu.rs. Needs bindings.wgsl and keystream.wgsl before it.
//
// One invocation writes one 64-byte block of coefficient stream j into input
// row j (row 0 is the secret, uploaded by the host). Grid: x, y over the
// blocks of the slice, z over j - 1. The block's piece (hence its object's
// key and stream position) is found by `find_piece` (bindings.wgsl).

// The workgroup's 64 blocks, staged so that the stores to `inputs` are
// coalesced (consecutive invocations, consecutive words) instead of 16
// words apart; rows of 17 words keep the staging writes off shared banks.
var<workgroup> tile: array<u32, 1088>;

@compute @workgroup_size(64)
fn fill_coefficients(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let blocks = params.words / 16u;
    let block = flat_index(gid, groups);
    let first = block - lid.x;
    let j = gid.z + 1u;
    if block < blocks {
        let piece = pieces[find_piece(block)];
        // 64-bit keystream block index = (block_hi, block_lo) + (block - start).
        let step = block - piece.start;
        let lo = piece.block_lo + step;
        let hi = piece.block_hi + select(0u, 1u, lo < step);
        let key = array<u32, 8>(
            piece.key[0].x, piece.key[0].y, piece.key[0].z, piece.key[0].w,
            piece.key[1].x, piece.key[1].y, piece.key[1].z, piece.key[1].w,
        );
        let ks = chacha20_block(key, lo, j, hi, 0u);
        for (var i = 0u; i < 16u; i++) {
            tile[lid.x * 17u + i] = ks[i];
        }
    }
    workgroupBarrier();
    if first >= blocks {
        return;
    }
    // Words of this workgroup's blocks that are inside the slice.
    let count = min(blocks - first, 64u) * 16u;
    let base = j * params.words + first * 16u;
    for (var i = 0u; i < 16u; i++) {
        let k = i * 64u + lid.x;
        if k < count {
            inputs[base + k] = tile[(k / 16u) * 17u + k % 16u];
        }
    }
}
