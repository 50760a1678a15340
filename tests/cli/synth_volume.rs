//! `umbra synth-volume`: deterministic, and never overwritten.

use super::*;

#[test]
fn synthetic_volume_is_deterministic_and_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.raw");
    let b = dir.path().join("b.raw");
    for out in [&a, &b] {
        let o = run(&[
            &"synth-volume",
            &"--slices",
            &"3",
            &"--width",
            &"64",
            &"--height",
            &"32",
            &"-o",
            out,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let bytes = fs::read(&a).unwrap();
    assert_eq!(bytes.len(), 3 * 64 * 32 * 2);
    assert_eq!(bytes, fs::read(&b).unwrap());
    let o = run_line("synth-volume --slices 1 -o {}", &[&a]);
    assert_fails_with(&o, &["a.raw", "already exists"]);
    assert_eq!(fs::read(&a).unwrap(), bytes);
}
