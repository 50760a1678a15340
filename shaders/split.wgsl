// Split, part 1: the random coefficient streams a_1..a_{t-1}, computed on the
// GPU from the key in `params`, so only the secret goes up and only the
// shares come down. Part 2 is apply.wgsl with the n x t Vandermonde matrix:
// shares = V * (secret, a_1, ..., a_{t-1}).
// CPU twin: src/keystream.rs (`fill`), driven by `CpuBackend::split` in
// src/engine.rs. Needs bindings.wgsl and keystream.wgsl before it.
//
// One invocation writes one 64-byte block of coefficient stream j into input
// row j (row 0 is the secret, uploaded by the host). Grid: x, y over the
// blocks of the slice, z over j - 1.

@compute @workgroup_size(64)
fn fill_coefficients(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let block = flat_index(gid, groups);
    if block >= params.words / 16u {
        return;
    }
    let j = gid.z + 1u;
    // 64-bit block index = (block_hi, block_lo) + block.
    let lo = params.block_lo + block;
    let hi = params.block_hi + select(0u, 1u, lo < block);
    let key = array<u32, 8>(
        params.key[0].x, params.key[0].y, params.key[0].z, params.key[0].w,
        params.key[1].x, params.key[1].y, params.key[1].z, params.key[1].w,
    );
    let ks = chacha20_block(key, lo, j, hi, 0u);
    let base = j * params.words + block * 16u;
    for (var i = 0u; i < 16u; i++) {
        inputs[base + i] = ks[i];
    }
}
