// The compact scheme's cipher pass (docs/DESIGN.md section 8) on the GPU:
// the stripes of each block XORed with keystream 0 of its object's key, in
// place, so that only plaintext goes up for a split and only plaintext comes
// down from a combine. Split: this pass on the input rows (the t plaintext
// stripes), then apply.wgsl with the Vandermonde rows. Combine: apply.wgsl
// with the inverse of t shares' rows, then this pass on the output rows.
// CPU twin: `keystream::xor_cipher` (src/keystream/) as
// `contract::disperse_via_apply` and its inverse use it (src/engine/).
// Needs bindings.wgsl and keystream.wgsl before it.
//
// Each piece is a run of one block's stripes: row r holds stripe r, which
// starts r * stripe bytes after row 0 in the shared stream, so a row's
// keystream is not aligned to 64 bytes when the stripe is not (the last,
// short block of an object): a chunk of 64 bytes then takes its keystream
// from two ChaCha20 blocks. Bytes past the data of a row (the zero padding
// of the last stripes) get a zero mask and stay zero, as the definition
// pads the ciphertext, not the plaintext.
//
// One invocation makes the 64 keystream bytes of one 64-byte chunk of one
// row. Grid: x, y over the chunks of the slice, z over the rows.

// The 16 packed keystream words for chunk `chunk` of row `row`, masked to
// the row's data bytes.
fn cipher_words(chunk: u32, row: u32) -> array<u32, 16> {
    var out: array<u32, 16>;
    let piece = pieces[find_piece(chunk)];
    let rel = (chunk - piece.start) * 64u;
    // Data bytes of this row in the piece, then in this chunk (public).
    let row_skip = row * piece.stripe;
    var row_valid = 0u;
    if piece.valid > row_skip {
        row_valid = min(piece.valid - row_skip, piece.data_len);
    }
    var valid = 0u;
    if row_valid > rel {
        valid = min(row_valid - rel, 64u);
    }
    if valid == 0u {
        return out;
    }
    // Stream byte offset of the chunk's first byte, a u64 (hi, lo).
    let add = row_skip + rel;
    let lo = piece.block_lo + add;
    let hi = piece.block_hi + select(0u, 1u, lo < add);
    let shift = lo & 63u;
    let block_lo = (lo >> 6u) | (hi << 26u);
    let block_hi = hi >> 6u;
    let key = array<u32, 8>(
        piece.key[0].x, piece.key[0].y, piece.key[0].z, piece.key[0].w,
        piece.key[1].x, piece.key[1].y, piece.key[1].z, piece.key[1].w,
    );
    // Keystream 0: nonce words (0, block >> 32, 0), as for stream j = 0.
    var ks: array<u32, 32>;
    let first = chacha20_block(key, block_lo, 0u, block_hi, 0u);
    for (var i = 0u; i < 16u; i++) {
        ks[i] = first[i];
    }
    if shift != 0u {
        let next_lo = block_lo + 1u;
        let next_hi = block_hi + select(0u, 1u, next_lo == 0u);
        let second = chacha20_block(key, next_lo, 0u, next_hi, 0u);
        for (var i = 0u; i < 16u; i++) {
            ks[16u + i] = second[i];
        }
    }
    let word_shift = shift >> 2u;
    let bits = (shift & 3u) * 8u;
    for (var i = 0u; i < 16u; i++) {
        // Bytes shift + 4i .. shift + 4i + 3 of the two blocks, packed.
        var w = ks[word_shift + i];
        if bits != 0u {
            w = (w >> bits) | (ks[word_shift + i + 1u] << (32u - bits));
        }
        let b = i * 4u;
        var mask = 0u;
        if valid >= b + 4u {
            mask = 0xffffffffu;
        } else if valid > b {
            mask = (1u << ((valid - b) * 8u)) - 1u;
        }
        out[i] = w & mask;
    }
    return out;
}

// The workgroup's 64 chunks of keystream, staged so that the XORs into the
// rows are coalesced (as in split.wgsl).
var<workgroup> tile: array<u32, 1088>;

// Fills the tile with the keystream of this invocation's chunk of row
// gid.z; every invocation of the workgroup reaches the barrier.
fn stage_keystream(gid: vec3<u32>, lid: vec3<u32>, groups: vec3<u32>) {
    let chunks = params.words / 16u;
    let chunk = flat_index(gid, groups);
    if chunk < chunks {
        let ks = cipher_words(chunk, gid.z);
        for (var i = 0u; i < 16u; i++) {
            tile[lid.x * 17u + i] = ks[i];
        }
    }
    workgroupBarrier();
}

// Words of row gid.z this workgroup covers: its first word and how many.
fn tile_span(gid: vec3<u32>, lid: vec3<u32>, groups: vec3<u32>) -> vec2<u32> {
    let chunks = params.words / 16u;
    let first = flat_index(gid, groups) - lid.x;
    if first >= chunks {
        return vec2<u32>(0u, 0u);
    }
    return vec2<u32>(gid.z * params.words + first * 16u, min(chunks - first, 64u) * 16u);
}

// Split: the t plaintext stripes in `inputs` become ciphertext.
@compute @workgroup_size(64)
fn cipher_inputs(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    stage_keystream(gid, lid, groups);
    let span = tile_span(gid, lid, groups);
    for (var i = 0u; i < 16u; i++) {
        let k = i * 64u + lid.x;
        if k < span.y {
            inputs[span.x + k] ^= tile[(k / 16u) * 17u + k % 16u];
        }
    }
}

// Combine: the t ciphertext stripes in `outputs` become plaintext.
@compute @workgroup_size(64)
fn cipher_outputs(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    stage_keystream(gid, lid, groups);
    let span = tile_span(gid, lid, groups);
    for (var i = 0u; i < 16u; i++) {
        let k = i * 64u + lid.x;
        if k < span.y {
            outputs[span.x + k] ^= tile[(k / 16u) * 17u + k % 16u];
        }
    }
}
