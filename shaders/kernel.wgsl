// The one kernel of umbra on the GPU: GF(2^8) (polynomial 0x11D) multiply of
// four packed bytes by a public constant, by shift-xor.
// CPU twin: src/kernel/ (the portable backend, src/kernel/portable.rs, does
// the same on eight bytes in a u64).
//
// Branch-free: the masks come from the bits of the constant, which is public
// (a matrix entry); no memory is indexed by data bytes.

// Four independent multiplications by x (i.e. by 2) in GF(2^8)/0x11D.
fn gf_xtime4(v: u32) -> u32 {
    return ((v & 0x7f7f7f7fu) << 1u) ^ (((v >> 7u) & 0x01010101u) * 0x1du);
}

// v, 2v, 4v, ..., 128v (four bytes each): the multiples that a product by
// any constant picks from. Computed once per input word and shared by every
// row of the matrix.
fn gf_powers4(v: u32) -> array<u32, 8> {
    let p1 = gf_xtime4(v);
    let p2 = gf_xtime4(p1);
    let p3 = gf_xtime4(p2);
    let p4 = gf_xtime4(p3);
    let p5 = gf_xtime4(p4);
    let p6 = gf_xtime4(p5);
    let p7 = gf_xtime4(p6);
    return array<u32, 8>(v, p1, p2, p3, p4, p5, p6, p7);
}

// c * v from the powers of v: the xor of p[i] over the set bits i of c.
//
// Written out without loops: Mesa's llvmpipe stops a loop statement after
// about 65,535 iterations in one invocation, which a 255 x 255 matrix of
// looped multiplies exceeded (silently wrong output); and unrolled code does
// not depend on the driver unrolling loops that naga has bounded.
fn gf_mul4_powers(c: u32, p: array<u32, 8>) -> u32 {
    return (p[0] & (0u - ((c >> 0u) & 1u))) ^
        (p[1] & (0u - ((c >> 1u) & 1u))) ^
        (p[2] & (0u - ((c >> 2u) & 1u))) ^
        (p[3] & (0u - ((c >> 3u) & 1u))) ^
        (p[4] & (0u - ((c >> 4u) & 1u))) ^
        (p[5] & (0u - ((c >> 5u) & 1u))) ^
        (p[6] & (0u - ((c >> 6u) & 1u))) ^
        (p[7] & (0u - ((c >> 7u) & 1u)));
}

// Four independent products c * (byte k of v), packed as v is.
fn gf_mul4(c: u32, v: u32) -> u32 {
    return gf_mul4_powers(c, gf_powers4(v));
}
