//! `umbra combine`: every bad share set named, and spares standing in.

use super::*;

fn too_few_shares(scheme: &str) {
    let s = split_with(4, 8, 5000, 2, scheme);
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..3], &[]);
    assert_fails_with(&o, &["3 share(s) given", "t = 4"]);
    assert!(!out.exists());
}

fn duplicate_share_or_duplicate_x(scheme: &str) {
    let s = split_with(3, 5, 5000, 3, scheme);
    let out = s.dir.path().join("out");
    let o = combine(
        &out,
        &[
            s.shares[0].clone(),
            s.shares[0].clone(),
            s.shares[1].clone(),
        ],
        &[],
    );
    assert_fails_with(&o, &["x = 1", "scan.bin.001.umbra"]);
    // The same share under another name is still x = 1.
    let copy = s.dir.path().join("copy.umbra");
    fs::copy(&s.shares[0], &copy).unwrap();
    let o = combine(
        &out,
        &[s.shares[0].clone(), copy.clone(), s.shares[1].clone()],
        &[],
    );
    assert_fails_with(&o, &["both hold x = 1", "copy.umbra"]);
    assert!(!out.exists());
}

fn shares_of_different_splits(scheme: &str) {
    let a = split_with(2, 3, 5000, 4, scheme);
    let b = split_with(2, 3, 5000, 4, scheme); // same bytes, another split
    let out = a.dir.path().join("out");
    let o = combine(&out, &[a.shares[0].clone(), b.shares[1].clone()], &[]);
    assert_fails_with(&o, &["different splits"]);
    let c = split_with(3, 4, 5000, 4, scheme); // other t and n
    let o = combine(
        &out,
        &[
            a.shares[0].clone(),
            c.shares[1].clone(),
            c.shares[2].clone(),
        ],
        &[],
    );
    assert_fails_with(&o, &["different splits"]);
    assert!(!out.exists());
}

fn truncated_share_named(scheme: &str) {
    let s = split_with(2, 3, 5000, 5, scheme);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&s.shares[1])
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 10).unwrap();
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..2], &[]);
    assert_fails_with(&o, &["scan.bin.002.umbra", "truncated"]);
    assert!(!out.exists());
    // With a spare, the truncated share is skipped with a warning naming it.
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("scan.bin.002.umbra"), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), s.original);
}

fn corrupted_share_named(scheme: &str) {
    let s = split_with(3, 5, 3 << 20, 6, scheme);
    let mut bytes = fs::read(&s.shares[2]).unwrap();
    let at = bytes.len() - 100; // in the payload's last segment
    bytes[at] ^= 0x01;
    fs::write(&s.shares[2], &bytes).unwrap();
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..3], &[]);
    assert_fails_with(&o, &["scan.bin.003.umbra", "corrupt"]);
    assert!(!out.exists());
    assert_no_partials(s.dir.path());
    // inspect names the bad segment and exits non-zero.
    let o = run_line("inspect {}", &[&s.shares[2]]);
    assert!(!o.status.success());
    let bad = format!("CORRUPT segment(s): {}", segment_at(&s.shares[2], at));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&bad));
    let o = run_line("inspect {}", &[&s.shares[1]]);
    assert!(o.status.success());
    // With spares, combine skips it and succeeds.
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("scan.bin.003.umbra"));
    assert_eq!(fs::read(&out).unwrap(), s.original);
}

fn wrong_magic_and_unknown_version(scheme: &str) {
    let s = split_with(2, 2, 1000, 7, scheme);
    let not_a_share = s.dir.path().join("notes.txt");
    fs::write(
        &not_a_share,
        "this is not a share, just text long enough to be read",
    )
    .unwrap();
    let out = s.dir.path().join("out");
    let o = combine(&out, &[s.shares[0].clone(), not_a_share.clone()], &[]);
    assert_fails_with(&o, &["notes.txt", "not an umbra share"]);

    let mut bytes = fs::read(&s.shares[1]).unwrap();
    bytes[8] = 9; // version
    let v9 = s.dir.path().join("v9.umbra");
    fs::write(&v9, &bytes).unwrap();
    let o = combine(&out, &[s.shares[0].clone(), v9], &[]);
    assert_fails_with(&o, &["v9.umbra", "version 9 is not supported"]);
    assert!(!out.exists());
}

fn zero_x_in_a_share_header(scheme: &str) {
    let s = split_with(2, 2, 1000, 8, scheme);
    let mut bytes = fs::read(&s.shares[1]).unwrap();
    bytes[16] = 0;
    fs::write(&s.shares[1], &bytes).unwrap();
    let o = combine(&s.dir.path().join("out"), &s.shares, &[]);
    assert_fails_with(&o, &["scan.bin.002.umbra", "x = 0"]);
}

fn forged_share_fails_the_tag_and_spares_recover(scheme: &str) {
    let s = split_with(3, 5, 100_000, 9, scheme);
    forge(&s.shares[1], 50_000);
    // inspect cannot tell: its own hashes hold.
    assert!(run_line("inspect {}", &[&s.shares[1]]).status.success());
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..3], &[]);
    assert_fails_with(&o, &["integrity check failed"]);
    assert!(!out.exists());
    assert_no_partials(s.dir.path());
    // With spares, another subset rebuilds the tagged object.
    // The forged share is named, and only it.
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("scan.bin.002.umbra is wrong although its own hashes hold"),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), s.original);
}

/// Two shares damaged in different segments, among t + 1: every segment
/// still has t intact copies, and each is taken from the shares intact
/// there.
fn damaged_segments_are_taken_from_the_spares_segment_by_segment(scheme: &str) {
    let s = split_with(4, 5, 3 << 20, 10, scheme);
    damage_segment(&s.shares[0], 0);
    damage_segment(&s.shares[3], 2);
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), s.original);
    let err = stderr(&o);
    assert!(
        err.contains("scan.bin.001.umbra: segment 0 is corrupt"),
        "{err}"
    );
    assert!(
        err.contains("scan.bin.004.umbra: segment 2 is corrupt"),
        "{err}"
    );
    // A third damage in segment 0: only 3 intact there, named.
    damage_segment(&s.shares[1], 0);
    let o = combine(&s.dir.path().join("out2"), &s.shares, &[]);
    assert_fails_with(&o, &["only 3 intact share(s)", "scan.bin.002.umbra"]);
}

both_schemes!(
    too_few_shares,
    duplicate_share_or_duplicate_x,
    shares_of_different_splits,
    truncated_share_named,
    corrupted_share_named,
    wrong_magic_and_unknown_version,
    zero_x_in_a_share_header,
    forged_share_fails_the_tag_and_spares_recover,
    damaged_segments_are_taken_from_the_spares_segment_by_segment
);

/// A Shamir share among compact ones (the same split id forced, as a
/// confused operator's copy would not give, so the header check must) and
/// compact with the gfshare format are refused with what differs.
#[test]
fn mixed_schemes_and_compact_gfshare_are_refused() {
    let a = split_with(2, 3, 5000, 21, "shamir");
    let b = split_with(2, 3, 5000, 21, "compact");
    // Give the Shamir share the compact split's id: only the scheme differs.
    let id = fs::read(&b.shares[0]).unwrap()[32..48].to_vec();
    let mut bytes = fs::read(&a.shares[1]).unwrap();
    bytes[32..48].copy_from_slice(&id);
    let (header, _, _, payload_at) = layout(&bytes);
    let mut hh = blake3::Hasher::new_derive_key("umbra share header v1");
    hh.update(&bytes[..header - 32]);
    hh.update(&bytes[header..payload_at]);
    let hh = *hh.finalize().as_bytes();
    bytes[header - 32..header].copy_from_slice(&hh);
    let odd = b.dir.path().join("odd.umbra");
    fs::write(&odd, &bytes).unwrap();
    let out = b.dir.path().join("out");
    let o = combine(&out, &[b.shares[0].clone(), odd], &[]);
    assert_fails_with(&o, &["odd.umbra", "the scheme"]);
    assert!(!out.exists());

    let o = run_line(
        "split --scheme compact --format gfshare -o {} {}",
        &[&b.dir.path().join("g"), &b.input],
    );
    assert_fails_with(&o, &["gfshare is Shamir only"]);
    assert!(!b.dir.path().join("g").exists());

    let o = run_line("inspect --json {}", &[&b.shares[0]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["scheme"], "compact");
    assert_eq!(v[0]["version"], 2);
    let o = run_line("inspect {}", &[&b.shares[0]]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("computational secrecy"));
}

/// A compact share whose key share was changed and its header hash
/// recomputed (its payload intact): the key from it is wrong, so the
/// stream decrypts to no umbra object; with spares the object comes back and that share, and only it,
/// is named, although its payload is right.
#[test]
fn a_forged_key_share_is_named() {
    let s = split_with(3, 5, 100_000, 22, "compact");
    let mut b = fs::read(&s.shares[1]).unwrap();
    let (header, _, _, payload_at) = layout(&b);
    b[100] ^= 0x08; // in the key share, bytes 96..128
    let mut hh = blake3::Hasher::new_derive_key("umbra share header v2");
    hh.update(&b[..header - 32]);
    hh.update(&b[header..payload_at]);
    let hh = *hh.finalize().as_bytes();
    b[header - 32..header].copy_from_slice(&hh);
    fs::write(&s.shares[1], &b).unwrap();
    assert!(run_line("inspect {}", &[&s.shares[1]]).status.success());
    let out = s.dir.path().join("out");
    assert_fails_with(
        &combine(&out, &s.shares[..3], &[]),
        &["wrong or mismatched shares"],
    );
    assert!(!out.exists());
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("scan.bin.002.umbra is wrong"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), s.original);
}
