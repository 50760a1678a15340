//! Property tests: any t of n shares rebuild any secret, at any stream
//! offset, on every SIMD level; repair rebuilds a share exactly; and the
//! file-level split/combine round-trips random files with random subsets.

mod common;

use proptest::prelude::*;

use umbra::share::format::SchemeKind;
use umbra::sharing::{SplitPlan, combine_matrix, repair_matrix};

use umbra::engine::{Backend, CpuBackend};
use umbra::kernel::Level;
use umbra::keystream::ObjectKey;
use umbra::sharing::Threshold;
use umbra::stream::combine::{CombineOptions, CombineTarget, combine_files};
use umbra::stream::repair::repair_share;
use umbra::stream::split::{SplitOptions, SplitSecrets, split_file};

/// (t, n), distinct non-zero xs, and a subset of t share indices.
fn params() -> impl Strategy<Value = (usize, Vec<u8>, Vec<usize>)> {
    (2usize..=12)
        .prop_flat_map(|t| (Just(t), t..=16usize))
        .prop_flat_map(|(t, n)| {
            let xs =
                proptest::sample::subsequence((1u8..=255).collect::<Vec<_>>(), n).prop_shuffle();
            let pick = proptest::sample::subsequence((0..n).collect::<Vec<_>>(), t).prop_shuffle();
            (Just(t), xs, pick)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_t_shares_rebuild(
        (t, xs, pick) in params(),
        secret in proptest::collection::vec(any::<u8>(), 0..9000),
        offset in any::<u64>().prop_map(|o| o >> 8),
        key in any::<[u8; 32]>(),
        level_index in 0usize..8,
    ) {
        let levels = Level::available();
        let backend = CpuBackend::new(levels[level_index % levels.len()]).unwrap();
        let n = xs.len();
        let plan = SplitPlan::new(Threshold::new(t, n).unwrap(), xs.clone()).unwrap();
        let key = ObjectKey::from_bytes(key);
        let mut shares = vec![vec![0u8; secret.len()]; n];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        backend.split(&plan, &key, offset, &secret, &mut refs).unwrap();

        let chosen_xs: Vec<u8> = pick.iter().map(|&i| xs[i]).collect();
        let inputs: Vec<&[u8]> = pick.iter().map(|&i| shares[i].as_slice()).collect();
        let mut out = vec![0u8; secret.len()];
        backend.apply(&combine_matrix(&chosen_xs).unwrap(), &inputs, &mut [&mut out]).unwrap();
        prop_assert_eq!(&out, &secret);

        // Repair every share that was not picked, from the picked ones.
        for (i, &x) in xs.iter().enumerate().filter(|(i, _)| !pick.contains(i)) {
            let mut rebuilt = vec![0u8; secret.len()];
            backend.apply(&repair_matrix(&chosen_xs, &[x]).unwrap(), &inputs, &mut [&mut rebuilt]).unwrap();
            prop_assert_eq!(&rebuilt, &shares[i]);
        }

        // Every level gives the same shares.
        let reference = CpuBackend::new(Level::Portable).unwrap();
        let mut again = vec![vec![0u8; secret.len()]; n];
        let mut refs: Vec<&mut [u8]> = again.iter_mut().map(Vec::as_mut_slice).collect();
        reference.split(&plan, &key, offset, &secret, &mut refs).unwrap();
        prop_assert_eq!(&again, &shares);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn files_round_trip_with_random_subsets(
        (t, xs, pick) in params(),
        content in proptest::collection::vec(any::<u8>(), 0..20_000),
        segment_shift in 12u32..=14,
        compact in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("object.bin");
        std::fs::write(&input, &content).unwrap();
        let n = xs.len();
        let scheme = if compact { SchemeKind::Compact } else { SchemeKind::Shamir };
        let mut opts = SplitOptions::new(SplitPlan::new(Threshold::new(t, n).unwrap(), xs.clone()).unwrap())
            .with_scheme(scheme);
        opts.segment_size = 1 << segment_shift;
        opts.batch_bytes = 2 << segment_shift; // several batches
        let backend = CpuBackend::detect();
        let out_dir = dir.path().join("shares");
        std::fs::create_dir(&out_dir).unwrap();
        let report = split_file(&backend, &input, &out_dir, &opts, &SplitSecrets::from_os().unwrap(), &mut |_| {}).unwrap();
        let chosen: Vec<_> = pick.iter().map(|&i| report.shares[i].clone()).collect();

        let restore = dir.path().join("restore");
        std::fs::create_dir(&restore).unwrap();
        let combine_opts = CombineOptions { batch_bytes: opts.batch_bytes, ..CombineOptions::default() };
        let r = combine_files(&backend, &chosen, &CombineTarget::Dir(restore.clone()), &combine_opts, &mut |_| {}).unwrap();
        prop_assert_eq!(r.output, restore.join("object.bin"));
        prop_assert_eq!(std::fs::read(restore.join("object.bin")).unwrap(), content);

        if let Some(lost) = (0..n).find(|i| !pick.contains(i)) {
            let rebuilt = dir.path().join("rebuilt.umbra");
            repair_share(&backend, &chosen, xs[lost], &rebuilt, &combine_opts).unwrap();
            prop_assert_eq!(std::fs::read(&rebuilt).unwrap(), std::fs::read(&report.shares[lost]).unwrap());
        }
    }
}

/// Small objects split together (one engine call) give the share files of
/// each split alone, byte for byte, on every SIMD level and (t, n).
#[test]
fn whole_streams_match_split_stream_on_every_level() {
    for level in Level::available() {
        let backend = CpuBackend::new(level).unwrap();
        for (t, n) in [(2, 3), (4, 8)] {
            for scheme in [SchemeKind::Shamir, SchemeKind::Compact] {
                common::check_whole_streams_match_split_stream(&backend, t, n, scheme);
            }
        }
    }
}
