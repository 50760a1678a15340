// Apply: out[r] = sum over c of matrix[r][c] * in[c], for split (Vandermonde
// rows, after split.wgsl has filled the coefficient rows), combine (Lagrange
// weights at 0) and repair (Lagrange weights at a lost x).
// CPU twin: src/kernel/ (`Kernel::apply`), driven by `CpuBackend::apply` in
// src/engine.rs. Needs bindings.wgsl and kernel.wgsl before it.
//
// One invocation computes one packed word (four byte positions) of one
// output row: grid x, y over the words, z over the rows (at most 255), so no
// loop in an invocation runs more than 255 times (see kernel.wgsl on
// llvmpipe's loop limit).

@compute @workgroup_size(64)
fn apply(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let w = flat_index(gid, groups);
    let words = params.words;
    if w >= words {
        return;
    }
    let r = gid.z;
    let cols = params.cols;
    var acc = 0u;
    for (var c = 0u; c < cols; c++) {
        acc ^= gf_mul4(matrix[r * cols + c], inputs[c * words + w]);
    }
    outputs[r * words + w] = acc;
}
