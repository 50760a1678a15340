// Apply: out[r] = sum over c of matrix[r][c] * in[c], for split (Vandermonde
// rows, after split.wgsl has filled the coefficient rows), combine (Lagrange
// weights at 0) and repair (Lagrange weights at a lost x).
// CPU twin: src/kernel/ (`Kernel::apply`), driven by `CpuBackend::apply` in
// src/engine/cpu.rs. Needs bindings.wgsl and kernel.wgsl before it.
//
// One invocation computes one packed word (four byte positions) of a group
// of up to 8 output rows: the powers of each input word (gf_powers4) are
// computed once and shared by the group. Grid: x, y over the words, z over
// the row groups. The row guards are uniform across a dispatch. No loop runs
// more than 255 times in an invocation (see kernel.wgsl on llvmpipe).

const GROUP_ROWS: u32 = 8u;

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
    let rows = params.rows;
    let cols = params.cols;
    let r0 = gid.z * GROUP_ROWS;
    var a0 = 0u;
    var a1 = 0u;
    var a2 = 0u;
    var a3 = 0u;
    var a4 = 0u;
    var a5 = 0u;
    var a6 = 0u;
    var a7 = 0u;
    for (var c = 0u; c < cols; c++) {
        let p = gf_powers4(inputs[c * words + w]);
        a0 ^= gf_mul4_powers(matrix[r0 * cols + c], p);
        if r0 + 1u < rows {
            a1 ^= gf_mul4_powers(matrix[(r0 + 1u) * cols + c], p);
        }
        if r0 + 2u < rows {
            a2 ^= gf_mul4_powers(matrix[(r0 + 2u) * cols + c], p);
        }
        if r0 + 3u < rows {
            a3 ^= gf_mul4_powers(matrix[(r0 + 3u) * cols + c], p);
        }
        if r0 + 4u < rows {
            a4 ^= gf_mul4_powers(matrix[(r0 + 4u) * cols + c], p);
        }
        if r0 + 5u < rows {
            a5 ^= gf_mul4_powers(matrix[(r0 + 5u) * cols + c], p);
        }
        if r0 + 6u < rows {
            a6 ^= gf_mul4_powers(matrix[(r0 + 6u) * cols + c], p);
        }
        if r0 + 7u < rows {
            a7 ^= gf_mul4_powers(matrix[(r0 + 7u) * cols + c], p);
        }
    }
    outputs[r0 * words + w] = a0;
    if r0 + 1u < rows {
        outputs[(r0 + 1u) * words + w] = a1;
    }
    if r0 + 2u < rows {
        outputs[(r0 + 2u) * words + w] = a2;
    }
    if r0 + 3u < rows {
        outputs[(r0 + 3u) * words + w] = a3;
    }
    if r0 + 4u < rows {
        outputs[(r0 + 4u) * words + w] = a4;
    }
    if r0 + 5u < rows {
        outputs[(r0 + 5u) * words + w] = a5;
    }
    if r0 + 6u < rows {
        outputs[(r0 + 6u) * words + w] = a6;
    }
    if r0 + 7u < rows {
        outputs[(r0 + 7u) * words + w] = a7;
    }
}
