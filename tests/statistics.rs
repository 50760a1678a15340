//! Statistics of the randomness: shares of an all-zero file are uniform
//! (chi-square), and every coefficient value, zero included, is drawn with
//! probability 1/256. Keys are fixed, so these tests are deterministic: they
//! cannot flake, and a broken generator fails them every time.

use umbra::sharing::SplitPlan;

use umbra::engine::{Backend, CpuBackend};
use umbra::keystream::{self, ObjectKey};
use umbra::sharing::{Threshold, default_xs};

/// Chi-square statistic of byte counts against the uniform distribution.
fn chi_square(bytes: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let expected = bytes.len() as f64 / 256.0;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// The 99.99th percentile of chi-square with 255 degrees of freedom.
const CHI2_255_P9999: f64 = 358.0;

#[test]
fn shares_of_zeros_are_uniform() {
    let len = 1 << 20;
    let secret = vec![0u8; len];
    let plan = SplitPlan::new(Threshold::new(4, 8).unwrap(), default_xs(8)).unwrap();
    let backend = CpuBackend::detect();
    for seed in 0..3u8 {
        let key = ObjectKey::from_bytes([seed; 32]);
        let mut shares = vec![vec![0u8; len]; 8];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        backend.split(&plan, &key, 0, &secret, &mut refs).unwrap();
        for (i, share) in shares.iter().enumerate() {
            let chi = chi_square(share);
            assert!(
                chi < CHI2_255_P9999,
                "key {seed}, share {}: chi-square {chi:.1}",
                i + 1
            );
        }
    }
}

#[test]
fn a_constant_stream_fails_the_test() {
    // The test itself can fail: a biased stream is caught.
    let biased: Vec<u8> = (0..1 << 20)
        .map(|i| if i % 3 == 0 { 0 } else { (i % 256) as u8 })
        .collect();
    assert!(chi_square(&biased) > CHI2_255_P9999);
}

#[test]
fn coefficient_zero_is_as_likely_as_any_value() {
    // RUSTSEC-2024-0398: coefficients drawn from 1..=255 make shares biased.
    let len = 1 << 22;
    let mut coeffs = vec![0u8; len];
    let key = ObjectKey::from_bytes([7; 32]);
    for j in 1..=3u32 {
        keystream::fill(&key, j, 0, &mut coeffs);
        let zeros = coeffs.iter().filter(|&&b| b == 0).count() as f64;
        let expected = len as f64 / 256.0;
        let sigma = (len as f64 * (1.0 / 256.0) * (255.0 / 256.0)).sqrt();
        assert!(
            (zeros - expected).abs() < 5.0 * sigma,
            "coefficient {j}: {zeros} zeros, expected {expected:.0} +/- {:.0}",
            5.0 * sigma
        );
        assert!(
            chi_square(&coeffs) < CHI2_255_P9999,
            "coefficient {j} not uniform"
        );
    }
}

#[test]
fn fewer_than_t_shares_do_not_depend_on_the_secret() {
    // With t = 3, any 2 shares are uniform and independent of the secret:
    // the joint distribution of (share 1, share 2) pairs is uniform over 65,536
    // cells for two very different secrets.
    let len = 1 << 22;
    let plan = SplitPlan::new(Threshold::new(3, 5).unwrap(), default_xs(5)).unwrap();
    let backend = CpuBackend::detect();
    for (name, secret) in [
        ("zeros", vec![0u8; len]),
        ("ramp", (0..len).map(|i| i as u8).collect()),
    ] {
        let key = ObjectKey::from_bytes([9; 32]);
        let mut shares = vec![vec![0u8; len]; 5];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        backend.split(&plan, &key, 0, &secret, &mut refs).unwrap();
        let mut counts = vec![0u64; 65536];
        for k in 0..len {
            counts[(shares[0][k] as usize) << 8 | shares[3][k] as usize] += 1;
        }
        let expected = len as f64 / 65536.0;
        let chi: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        // 65,535 degrees of freedom: mean 65,535, sd 362; allow 5 sd.
        assert!(
            chi < 65535.0 + 5.0 * 362.0,
            "{name}: joint chi-square {chi:.0}"
        );
    }
}
