//! `umbra repair`: the exact share rebuilt, at default and custom coordinates.

use super::*;

fn repair_rebuilds_the_exact_share(scheme: &str) {
    let s = split_with(3, 5, 2_500_000, 11, scheme);
    let lost = s.shares[3].clone();
    let original_share = fs::read(&lost).unwrap();
    fs::remove_file(&lost).unwrap();
    let o = run_line(
        "repair --x 4 {} {} {}",
        &[&s.shares[0], &s.shares[1], &s.shares[4]],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(&lost).unwrap(),
        original_share,
        "repaired share is byte-identical"
    );
    // Repairing an x that is present is refused.
    let o = run_line(
        "repair --x 1 -o {} {} {} {}",
        &[
            &s.dir.path().join("r"),
            &s.shares[0],
            &s.shares[1],
            &s.shares[4],
        ],
    );
    assert_fails_with(&o, &["x = 1"]);
}

#[test]
fn custom_coordinates_round_trip_and_repair_names_the_share() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("img.raw");
    let data = pseudo_random(40_000, 17);
    fs::write(&input, &data).unwrap();
    let out = dir.path().join("s");
    let o = run_line("split -t 2 -n 3 --xs 7,200,255 -o {} {}", &[&out, &input]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shares = files_ending(&out, ".umbra");
    let names: Vec<String> = shares
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "img.raw.007.umbra",
            "img.raw.200.umbra",
            "img.raw.255.umbra"
        ]
    );
    let lost = fs::read(&shares[1]).unwrap();
    fs::remove_file(&shares[1]).unwrap();
    let o = run_line("repair --x 200 {} {}", &[&shares[0], &shares[2]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&shares[1]).unwrap(), lost);
    let restored = dir.path().join("back.raw");
    let o = run_line("combine -o {} {} {}", &[&restored, &shares[2], &shares[1]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&restored).unwrap(), data);
}

/// Repair with spares: damaged segments come from the others, segment by
/// segment, and a forged share (its own hashes intact) is found by the same
/// subset search as combine's, and named.
fn repair_uses_spares_per_segment_and_names_a_forged_share(scheme: &str) {
    let s = split_with(4, 6, 3 << 20, 12, scheme);
    let lost = fs::read(&s.shares[5]).unwrap();
    let out = s.dir.path().join("x6.umbra");
    damage_segment(&s.shares[0], 0);
    damage_segment(&s.shares[1], 2);
    let o = run_line(
        "repair --x 6 -o {} {} {} {} {} {}",
        &[
            &out,
            &s.shares[0],
            &s.shares[1],
            &s.shares[2],
            &s.shares[3],
            &s.shares[4],
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), lost);

    let s = split_with(3, 5, 100_000, 13, scheme);
    let lost = fs::read(&s.shares[4]).unwrap();
    forge(&s.shares[1], 40_000);
    let out = s.dir.path().join("x5.umbra");
    let o = run_line(
        "repair --x 5 -o {} {} {} {}",
        &[&out, &s.shares[0], &s.shares[1], &s.shares[2]],
    );
    assert_fails_with(&o, &["integrity check failed"]);
    assert!(!out.exists());
    let o = run_line(
        "repair --x 5 -o {} {} {} {} {}",
        &[&out, &s.shares[0], &s.shares[1], &s.shares[2], &s.shares[3]],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), lost);
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("scan.bin.002.umbra is wrong"), "{err}");
}

both_schemes!(
    repair_rebuilds_the_exact_share,
    repair_uses_spares_per_segment_and_names_a_forged_share
);
