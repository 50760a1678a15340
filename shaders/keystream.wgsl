// The coefficient keystream of docs/DESIGN.md (section 4), on the GPU.
// CPU twin: src/keystream/ (this file must produce the same bytes).
//
// Coefficient a_j at byte offset o of the shared stream is byte o mod 64 of
// the ChaCha20 (RFC 8439, 20 rounds) block with the object's key, block
// counter (o / 64) mod 2^32 and nonce words (j, (o / 64) >> 32, 0). Word i of
// a block, packed little-endian, is bytes 4i..4i+3 of that block, which is
// exactly the packing umbra uses for byte streams on the GPU.
//
// The state is kept as four vec4 rows, so a column round is one vector
// quarter round, and a diagonal round is the same after rotating rows b, c, d.

fn rotl4(v: vec4<u32>, n: u32) -> vec4<u32> {
    return (v << vec4<u32>(n)) | (v >> vec4<u32>(32u - n));
}

// The 64-byte ChaCha20 block for `key` (eight LE words), block counter
// `counter` and nonce words (n0, n1, n2), as 16 LE words.
fn chacha20_block(key: array<u32, 8>, counter: u32, n0: u32, n1: u32, n2: u32) -> array<u32, 16> {
    // "expand 32-byte k"
    let a0 = vec4<u32>(0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u);
    let b0 = vec4<u32>(key[0], key[1], key[2], key[3]);
    let c0 = vec4<u32>(key[4], key[5], key[6], key[7]);
    let d0 = vec4<u32>(counter, n0, n1, n2);
    var a = a0;
    var b = b0;
    var c = c0;
    var d = d0;
    for (var double_round = 0u; double_round < 10u; double_round++) {
        // Column round.
        a += b; d ^= a; d = rotl4(d, 16u);
        c += d; b ^= c; b = rotl4(b, 12u);
        a += b; d ^= a; d = rotl4(d, 8u);
        c += d; b ^= c; b = rotl4(b, 7u);
        // Diagonal round: line the diagonals up as columns, then back.
        b = b.yzwx; c = c.zwxy; d = d.wxyz;
        a += b; d ^= a; d = rotl4(d, 16u);
        c += d; b ^= c; b = rotl4(b, 12u);
        a += b; d ^= a; d = rotl4(d, 8u);
        c += d; b ^= c; b = rotl4(b, 7u);
        b = b.wxyz; c = c.zwxy; d = d.yzwx;
    }
    a += a0;
    b += b0;
    c += c0;
    d += d0;
    return array<u32, 16>(
        a.x, a.y, a.z, a.w,
        b.x, b.y, b.z, b.w,
        c.x, c.y, c.z, c.w,
        d.x, d.y, d.z, d.w,
    );
}
