//! The one kernel of umbra: a small GF(2^8) matrix times byte streams,
//! `out[r] = sum over c of m[r][c] * in[c]`, on every CPU backend.
//!
//! Split, combine and repair all call this (see [`crate::sharing`]). The
//! backends differ only in how they multiply a stream by a public constant;
//! none indexes memory by secret bytes:
//! - `Portable`: shift-xor on eight bytes at a time in a u64 (SWAR);
//! - `Ssse3`, `Avx2`, `Neon`: 16-entry nibble tables held in a register and
//!   applied with a byte shuffle (PSHUFB / TBL);
//! - `Avx2Gfni`, `Avx512Gfni`: one `GF2P8AFFINEQB` per constant, with the 8x8
//!   bit matrix of "multiply by c" in 0x11D (see [`crate::field::affine_matrix`]).
//!
//! A [`Level`] is only ever constructed for use after the CPU was checked
//! ([`Level::is_available`]); [`Kernel::new`] refuses one the CPU lacks, so the
//! `unsafe` calls below rest on that check.

#[cfg(target_arch = "aarch64")]
mod neon;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::field;
use crate::sharing::Matrix;

/// The CPU backends, slowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Portable,
    Ssse3,
    Avx2,
    Avx2Gfni,
    Avx512Gfni,
    Neon,
}

/// A backend was asked for that this CPU does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error("unknown SIMD level {name:?}; known levels: {known}")]
    Unknown { name: String, known: String },
    #[error(
        "SIMD level {level} needs CPU features this machine lacks ({needs}); available: {available}"
    )]
    Unavailable {
        level: &'static str,
        needs: &'static str,
        available: String,
    },
}

impl Level {
    /// Every level, portable first.
    pub const ALL: [Level; 6] = [
        Level::Portable,
        Level::Ssse3,
        Level::Avx2,
        Level::Avx2Gfni,
        Level::Avx512Gfni,
        Level::Neon,
    ];

    /// The level's name, as `--simd` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Ssse3 => "ssse3",
            Level::Avx2 => "avx2",
            Level::Avx2Gfni => "avx2-gfni",
            Level::Avx512Gfni => "avx512-gfni",
            Level::Neon => "neon",
        }
    }

    /// The CPU features a level needs, as the user would look them up.
    pub fn needs(self) -> &'static str {
        match self {
            Level::Portable => "nothing",
            Level::Ssse3 => "x86-64 ssse3",
            Level::Avx2 => "x86-64 avx2",
            Level::Avx2Gfni => "x86-64 avx2 + gfni",
            Level::Avx512Gfni => "x86-64 avx512f + avx512bw + gfni",
            Level::Neon => "aarch64 neon",
        }
    }

    /// The level named `name` (`--simd`, `UMBRA_SIMD`).
    pub fn parse(name: &str) -> Result<Level, LevelError> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| LevelError::Unknown {
                name: name.to_string(),
                known: Level::ALL.map(Level::name).join(", "),
            })
    }

    /// Whether this CPU can run the level, checked at run time.
    pub fn is_available(self) -> bool {
        match self {
            Level::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Level::Ssse3 => std::arch::is_x86_feature_detected!("ssse3"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2Gfni => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("gfni")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512Gfni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("gfni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Level::Ssse3 | Level::Avx2 | Level::Avx2Gfni | Level::Avx512Gfni => false,
            #[cfg(target_arch = "aarch64")]
            Level::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(not(target_arch = "aarch64"))]
            Level::Neon => false,
        }
    }

    /// Every level this CPU can run, slowest first.
    pub fn available() -> Vec<Level> {
        Level::ALL
            .into_iter()
            .filter(|l| l.is_available())
            .collect()
    }

    /// The fastest level this CPU can run.
    pub fn detect() -> Level {
        // ALL is ordered slowest first within each architecture.
        Level::available()
            .into_iter()
            .max()
            .unwrap_or(Level::Portable)
    }

    /// A requested level if the CPU has it, else an error naming what is missing.
    /// An override can lower the level; it can never exceed the CPU.
    pub fn checked(self) -> Result<Level, LevelError> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(LevelError::Unavailable {
                level: self.name(),
                needs: self.needs(),
                available: Level::available()
                    .into_iter()
                    .map(Level::name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-constant data each backend multiplies with, prepared once per matrix.
#[derive(Clone)]
enum Tables {
    /// The constants themselves (portable shift-xor).
    Constants,
    /// For each entry: low-nibble table then high-nibble table.
    Nibbles(Vec<[u8; 32]>),
    /// For each entry: the GF2P8AFFINEQB bit matrix.
    Affine(Vec<u64>),
}

/// A matrix prepared for one backend: build once, apply to many chunks.
#[derive(Clone)]
pub struct Kernel {
    level: Level,
    matrix: Matrix,
    tables: Tables,
}

impl Kernel {
    /// Prepares `matrix` for `level`, which must be available on this CPU.
    pub fn new(level: Level, matrix: Matrix) -> Result<Self, LevelError> {
        let level = level.checked()?;
        let entries = || (0..matrix.rows()).flat_map(|r| matrix.row(r).iter().copied());
        let tables = match level {
            Level::Portable => Tables::Constants,
            Level::Ssse3 | Level::Avx2 | Level::Neon => Tables::Nibbles(
                entries()
                    .map(|c| {
                        let (lo, hi) = field::nibble_tables(c);
                        let mut t = [0u8; 32];
                        t[..16].copy_from_slice(&lo);
                        t[16..].copy_from_slice(&hi);
                        t
                    })
                    .collect(),
            ),
            Level::Avx2Gfni | Level::Avx512Gfni => {
                Tables::Affine(entries().map(field::affine_matrix).collect())
            }
        };
        Ok(Self {
            level,
            matrix,
            tables,
        })
    }

    /// The level this kernel runs at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The matrix this kernel applies.
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }

    /// `out[r] = sum over c of m[r][c] * in[c]`, for every byte position.
    ///
    /// # Panics
    /// If the numbers of inputs and outputs do not match the matrix, or the
    /// streams differ in length: callers build these, input never does.
    pub fn apply(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        self.apply_with(inputs, outputs, false)
    }

    /// As [`Kernel::apply`], with non-temporal stores where the backend has
    /// them and the outputs are vector-aligned: for outputs far larger than
    /// the caches that nobody reads back soon (split into DRAM buffers).
    pub fn apply_nontemporal(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
        self.apply_with(inputs, outputs, true)
    }

    fn apply_with(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]], nontemporal: bool) {
        let m = &self.matrix;
        assert_eq!(inputs.len(), m.cols(), "one input stream per matrix column");
        assert_eq!(outputs.len(), m.rows(), "one output stream per matrix row");
        let len = outputs.first().map_or(0, |o| o.len());
        assert!(
            inputs.iter().all(|i| i.len() == len) && outputs.iter().all(|o| o.len() == len),
            "all streams have one length"
        );
        if len == 0 {
            return;
        }
        // The SIMD paths do whole vectors and leave the tail to the portable
        // path, which computes the same products.
        let done = match (&self.tables, self.level) {
            (Tables::Constants, Level::Portable) => 0,
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Kernel::new checked that the CPU has SSSE3.
            (Tables::Nibbles(t), Level::Ssse3) => unsafe {
                x86::apply_ssse3(m, t, inputs, outputs)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Kernel::new checked that the CPU has AVX2.
            (Tables::Nibbles(t), Level::Avx2) => unsafe { x86::apply_avx2(m, t, inputs, outputs) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Kernel::new checked that the CPU has AVX2 and GFNI.
            (Tables::Affine(t), Level::Avx2Gfni) => unsafe {
                x86::apply_avx2_gfni(m, t, inputs, outputs, nontemporal)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Kernel::new checked that the CPU has AVX-512F, AVX-512BW and GFNI.
            (Tables::Affine(t), Level::Avx512Gfni) => unsafe {
                x86::apply_avx512_gfni(m, t, inputs, outputs, nontemporal)
            },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: Kernel::new checked that the CPU has NEON.
            (Tables::Nibbles(t), Level::Neon) => unsafe { neon::apply_neon(m, t, inputs, outputs) },
            (_, level) => {
                unreachable!("level {level} was checked available but has no kernel here")
            }
        };
        if done < len {
            let tail_in: Vec<&[u8]> = inputs.iter().map(|i| &i[done..]).collect();
            let mut tail_out: Vec<&mut [u8]> = outputs.iter_mut().map(|o| &mut o[done..]).collect();
            portable::apply(m, &tail_in, &mut tail_out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharing::apply_reference;
    use crate::tools::synthetic::pseudo_random;

    /// Every product c * x, for all 65,536 pairs, on every level this CPU has.
    #[test]
    fn all_products_every_level() {
        let xs: Vec<u8> = (0..=255u8).collect();
        for level in Level::available() {
            for c in 0..=255u8 {
                let kernel = Kernel::new(level, Matrix::new(1, 1, vec![c])).unwrap();
                let mut out = vec![0u8; 256];
                kernel.apply(&[&xs], &mut [&mut out]);
                for x in 0..=255u8 {
                    assert_eq!(
                        out[x as usize],
                        field::mul_reference(c, x),
                        "level {level}: {c} * {x}"
                    );
                }
            }
        }
    }

    fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
        a.iter().zip(b).position(|(x, y)| x != y)
    }

    /// Each level against the byte-wise reference on awkward lengths and shapes.
    #[test]
    fn levels_match_reference_on_awkward_lengths() {
        let mut lengths: Vec<usize> = (0..=70).collect();
        lengths.extend([4095, 4096, 4097, 1 << 20, (1 << 20) - 1, (1 << 20) + 1]);
        let shapes = [(1, 1), (8, 4), (1, 4), (3, 2), (16, 8), (2, 9)];
        // Random constants, and a first column of ones (split's Vandermonde
        // rows, which the GFNI kernels special-case).
        let kinds = shapes
            .iter()
            .flat_map(|&shape| [(shape, false), (shape, true)]);
        for ((rows, cols), first_one) in kinds {
            let mut entries = pseudo_random(rows * cols, (rows * 31 + cols) as u64);
            if first_one {
                entries.iter_mut().step_by(cols).for_each(|e| *e = 1);
            }
            let matrix = Matrix::new(rows, cols, entries);
            for &len in &lengths {
                // The 1 MiB lengths only on the main shape, to keep the test quick.
                if len > 5000 && (rows, cols) != (8, 4) {
                    continue;
                }
                let inputs: Vec<Vec<u8>> = (0..cols)
                    .map(|c| pseudo_random(len, (c + len) as u64))
                    .collect();
                let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
                let mut expected = vec![vec![0u8; len]; rows];
                {
                    let mut refs: Vec<&mut [u8]> =
                        expected.iter_mut().map(Vec::as_mut_slice).collect();
                    if len <= 5000 {
                        apply_reference(&matrix, &input_refs, &mut refs);
                    } else {
                        portable::apply(&matrix, &input_refs, &mut refs);
                    }
                }
                for level in Level::available() {
                    let kernel = Kernel::new(level, matrix.clone()).unwrap();
                    // Poison the outputs: every byte must be written.
                    let mut got = vec![vec![0xA5u8; len]; rows];
                    let mut refs: Vec<&mut [u8]> = got.iter_mut().map(Vec::as_mut_slice).collect();
                    kernel.apply(&input_refs, &mut refs);
                    for r in 0..rows {
                        if let Some(at) = first_difference(&got[r], &expected[r]) {
                            panic!(
                                "level {level}, shape {rows}x{cols} (first column ones: \
                                 {first_one}), length {len}, row {r}: first difference at \
                                 offset {at}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The non-temporal store path (aligned outputs) equals the plain one.
    #[test]
    fn nontemporal_stores_match() {
        use crate::buffer::AlignedBuf;
        let mut vandermonde_like = pseudo_random(32, 5);
        vandermonde_like.iter_mut().step_by(4).for_each(|e| *e = 1);
        for (matrix, len) in [
            Matrix::new(8, 4, pseudo_random(32, 5)),
            Matrix::new(8, 4, vandermonde_like),
        ]
        .into_iter()
        .flat_map(|m| {
            [0usize, 1, 63, 64, 65, 4095, 4096, 4097, (1 << 20) + 1]
                .map(move |len| (m.clone(), len))
        }) {
            let inputs: Vec<Vec<u8>> = (0..4).map(|c| pseudo_random(len, c as u64 + 9)).collect();
            let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let mut expected = vec![vec![0u8; len]; 8];
            let mut refs: Vec<&mut [u8]> = expected.iter_mut().map(Vec::as_mut_slice).collect();
            portable::apply(&matrix, &input_refs, &mut refs);
            for level in Level::available() {
                let kernel = Kernel::new(level, matrix.clone()).unwrap();
                let mut got: Vec<AlignedBuf> = (0..8).map(|_| AlignedBuf::zeroed(len)).collect();
                let mut refs: Vec<&mut [u8]> = got.iter_mut().map(|b| &mut b[..]).collect();
                kernel.apply_nontemporal(&input_refs, &mut refs);
                for r in 0..8 {
                    assert!(
                        got[r][..] == expected[r][..],
                        "level {level}, length {len}, row {r}: first difference at {:?}",
                        first_difference(&got[r], &expected[r])
                    );
                }
            }
        }
    }

    /// CI states which levels the CPU has, read from /proc/cpuinfo apart from
    /// Rust's detection (scripts/test.sh sets UMBRA_EXPECT_LEVELS): every one
    /// of them must be detected, so that each level's tests above really run
    /// there and none is skipped by a detection bug.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn detected_levels_match_what_ci_expects() {
        let detected: Vec<&str> = Level::available().into_iter().map(Level::name).collect();
        eprintln!("SIMD levels detected: {}", detected.join(", "));
        if let Ok(expected) = std::env::var("UMBRA_EXPECT_LEVELS") {
            let expected: Vec<&str> = expected.split(',').map(str::trim).collect();
            assert_eq!(detected, expected, "levels detected vs /proc/cpuinfo");
        }
    }

    /// NEON is part of every aarch64 Linux CPU: its tests must run there.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn neon_is_detected_on_aarch64() {
        assert!(Level::Neon.is_available(), "NEON not detected on aarch64");
    }

    #[test]
    fn parse_and_check() {
        assert_eq!(Level::parse("AVX2").unwrap(), Level::Avx2);
        assert!(matches!(
            Level::parse("sse9"),
            Err(LevelError::Unknown { .. })
        ));
        assert_eq!(Level::Portable.checked(), Ok(Level::Portable));
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(
            Level::Neon.checked(),
            Err(LevelError::Unavailable { level: "neon", .. })
        ));
        assert!(Level::detect().is_available());
    }
}
