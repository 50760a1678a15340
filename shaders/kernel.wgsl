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

// Four independent products c * (byte k of v), packed as v is: the sum of
// (x^i * v) over the set bits i of c. Written out without a loop: Mesa's
// llvmpipe stops a loop statement after about 65,535 iterations in one
// invocation, which a 255 x 255 matrix of looped multiplies exceeded
// (silently wrong output). The masks come from the public constant's bits.
fn gf_mul4(c: u32, v: u32) -> u32 {
    var x = v;
    var acc = x & (0u - (c & 1u));
    x = gf_xtime4(x);
    acc ^= x & (0u - ((c >> 1u) & 1u));
    x = gf_xtime4(x);
    acc ^= x & (0u - ((c >> 2u) & 1u));
    x = gf_xtime4(x);
    acc ^= x & (0u - ((c >> 3u) & 1u));
    x = gf_xtime4(x);
    acc ^= x & (0u - ((c >> 4u) & 1u));
    x = gf_xtime4(x);
    acc ^= x & (0u - ((c >> 5u) & 1u));
    x = gf_xtime4(x);
    acc ^= x & (0u - ((c >> 6u) & 1u));
    x = gf_xtime4(x);
    acc ^= x & (0u - ((c >> 7u) & 1u));
    return acc;
}
