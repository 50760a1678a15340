//! `--format gfshare`: bad libgfshare inputs named.

use super::*;

#[test]
fn gfshare_bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f.bin");
    fs::write(&input, pseudo_random(1000, 18)).unwrap();
    let out = dir.path().join("g");
    let o = run_line("split --format gfshare -t 2 -n 3 -o {} {}", &[&out, &input]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shares = files_ending(&out, "");
    // A share of another length.
    let short = dir.path().join("f.bin.009");
    fs::write(&short, b"short").unwrap();
    let o = run_line(
        "combine --format gfshare -o {} {} {}",
        &[&dir.path().join("x"), &shares[0], &short],
    );
    assert_fails_with(&o, &["f.bin.009", "5 bytes"]);
    // A name without three digits.
    let odd = dir.path().join("f.bin.x1");
    fs::copy(&shares[0], &odd).unwrap();
    let o = run_line(
        "combine --format gfshare -o {} {} {}",
        &[&dir.path().join("x"), &shares[1], &odd],
    );
    assert_fails_with(&o, &["f.bin.x1", "three digits"]);
    // The same x twice.
    let o = run_line(
        "combine --format gfshare -o {} {} {}",
        &[&dir.path().join("x"), &shares[1], &shares[1]],
    );
    assert_fails_with(&o, &["x = 2"]);
    assert!(!dir.path().join("x").exists());
}
