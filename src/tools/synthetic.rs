//! Deterministic synthetic CT-like volumes for benchmarks: 16-bit slices of
//! an elliptical phantom (air, soft tissue, bone ring, a few lesions) with
//! noise from a fixed-seed generator. The same (width, height, slice) always
//! gives the same bytes, so any slice can be produced on its own and a
//! volume of several GB never needs to be stored. Also the noise bytes that
//! the tests use ([`pseudo_random`]).

/// Little-endian 16-bit samples of one slice, as a CT stores them
/// (Hounsfield units + 1024, so air is about 24 and bone about 2000).
pub fn ct_slice(width: usize, height: usize, slice: usize, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(width * height * 2);
    let mut rng = SplitMix64(0x5EED_0000_0000_0000 ^ (slice as u64).wrapping_mul(0x9E37_79B9));
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    // The body narrows towards the ends of the volume, like a torso.
    let taper = 1.0 - 0.3 * ((slice % 600) as f32 / 600.0 - 0.5).abs();
    let (ax, ay) = (0.42 * width as f32 * taper, 0.34 * height as f32 * taper);
    for y in 0..height {
        for x in 0..width {
            let dx = (x as f32 - cx) / ax;
            let dy = (y as f32 - cy) / ay;
            let r = dx * dx + dy * dy;
            let lesion = ((x as f32 - cx * 0.7).powi(2) + (y as f32 - cy * 1.1).powi(2)).sqrt()
                < width as f32 * 0.04;
            let hu: f32 = if r > 1.0 {
                -1000.0
            } else if r > 0.85 {
                700.0 + 300.0 * (1.0 - r) // bone ring
            } else if lesion {
                60.0
            } else {
                40.0 - 80.0 * r // soft tissue, fat towards the edge
            };
            let noise = (rng.next() % 41) as f32 - 20.0;
            let v = (hu + 1024.0 + noise).clamp(0.0, 4095.0) as u16;
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A whole volume of `slices` slices, concatenated.
pub fn ct_volume(width: usize, height: usize, slices: usize) -> Vec<u8> {
    let mut volume = Vec::with_capacity(width * height * 2 * slices);
    let mut slice = Vec::new();
    for z in 0..slices {
        ct_slice(width, height, z, &mut slice);
        volume.extend_from_slice(&slice);
    }
    volume
}

/// Distinct slices a [`VolumeReader`] cycles through.
pub const READER_DISTINCT_SLICES: usize = 16;

/// A volume of any size as a reader: benchmarks can stream gigabytes through
/// the pipeline without holding or storing them. It computes
/// [`READER_DISTINCT_SLICES`] slices once and repeats them, so that making
/// the data costs nothing next to what is measured.
pub struct VolumeReader {
    slices: Vec<Vec<u8>>,
    total: u64,
    pos: u64,
}

impl VolumeReader {
    /// `total` bytes of 16-bit `width` x `height` slices (the last one cut short).
    pub fn new(width: usize, height: usize, total: u64) -> Self {
        let slices = (0..READER_DISTINCT_SLICES)
            .map(|z| {
                let mut s = Vec::new();
                ct_slice(width, height, z, &mut s);
                s
            })
            .collect();
        Self {
            slices,
            total,
            pos: 0,
        }
    }
}

impl std::io::Read for VolumeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.total {
            return Ok(0);
        }
        let slice_len = self.slices[0].len() as u64;
        let slice = &self.slices[(self.pos / slice_len) as usize % self.slices.len()];
        let within = (self.pos % slice_len) as usize;
        let n = buf
            .len()
            .min(slice.len() - within)
            .min((self.total - self.pos) as usize);
        buf[..n].copy_from_slice(&slice[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Deterministic noise bytes, different per seed (xorshift64): test data
/// with no structure for a kernel to hide behind. The golden vectors of
/// tests/vectors.rs are pinned to these exact bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_matches_volume() {
        use std::io::Read;
        let sixteen = ct_volume(32, 16, READER_DISTINCT_SLICES);
        let whole = [sixteen.clone(), sixteen[..32 * 16 * 2 * 4].to_vec()].concat();
        let mut r = VolumeReader::new(32, 16, whole.len() as u64 - 5);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, &whole[..whole.len() - 5]);
    }

    #[test]
    fn deterministic_and_sized() {
        let a = ct_volume(64, 48, 3);
        let b = ct_volume(64, 48, 3);
        assert_eq!(a, b);
        assert_eq!(a.len(), 64 * 48 * 2 * 3);
        let mut s = Vec::new();
        ct_slice(64, 48, 2, &mut s);
        assert_eq!(&a[64 * 48 * 4..], &s[..]);
        // Air outside, tissue inside.
        let centre = u16::from_le_bytes([s[(24 * 64 + 32) * 2], s[(24 * 64 + 32) * 2 + 1]]);
        let corner = u16::from_le_bytes([s[0], s[1]]);
        assert!(
            corner < 100 && centre > 1000,
            "corner {corner}, centre {centre}"
        );
    }
}
