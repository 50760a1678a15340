//! `umbra split`: round trips, share names, parameters, inputs and outputs.

use super::*;

#[test]
fn round_trip_restores_name_and_bytes() {
    let s = split(4, 8, 300_000, 1);
    let restore = s.dir.path().join("restore");
    fs::create_dir(&restore).unwrap();
    let o = combine(
        &restore,
        &[
            s.shares[7].clone(),
            s.shares[2].clone(),
            s.shares[4].clone(),
            s.shares[0].clone(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(restore.join("scan.bin")).unwrap(), s.original);
    assert_no_partials(&restore);
    // Share names show x; the input name only because it was asked for by default.
    assert!(
        s.shares[2]
            .to_string_lossy()
            .ends_with("scan.bin.003.umbra")
    );
}

#[test]
fn anonymous_names_hide_the_input_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("PATIENT_DOE_JOHN.dcm");
    fs::write(&input, b"DICOM-ish bytes").unwrap();
    let out = dir.path().join("shares");
    let o = run_line("split --anonymous -t 2 -n 3 -o {} {}", &[&out, &input]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shares = files_ending(&out, ".umbra");
    assert_eq!(shares.len(), 3);
    for s in &shares {
        let name = s.file_name().unwrap().to_string_lossy();
        assert!(!name.contains("DOE"), "{name}");
        let bytes = fs::read(s).unwrap();
        assert!(
            !bytes.windows(3).any(|w| w == b"DOE"),
            "name leaked into {name}"
        );
    }
    let restore = dir.path().join("restore");
    fs::create_dir(&restore).unwrap();
    let o = combine(&restore, &shares[..2], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(restore.join("PATIENT_DOE_JOHN.dcm")).unwrap(),
        b"DICOM-ish bytes"
    );
}

#[test]
fn bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f");
    fs::write(&input, b"x").unwrap();
    for (t, n, needle) in [
        ("1", "3", "t = 1"),
        ("5", "4", "exceeds the share count"),
        ("4", "256", "n = 256"),
    ] {
        let o = run_line(
            "split -t {} -n {} -o {} {}",
            &[&t, &n, &dir.path().join("o"), &input],
        );
        assert_fails_with(&o, &[needle]);
    }
    let o = run_line(
        "split -t 2 -n 3 --xs 0,1,2 -o {} {}",
        &[&dir.path().join("o"), &input],
    );
    assert_fails_with(&o, &["x = 0"]);
    let o = run_line(
        "split -t 2 -n 3 --xs 1,2,2 -o {} {}",
        &[&dir.path().join("o"), &input],
    );
    assert_fails_with(&o, &["x = 2 appears twice"]);
    assert!(
        !dir.path().join("o").exists() || files_ending(&dir.path().join("o"), ".umbra").is_empty()
    );
}

#[test]
fn unreadable_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.dcm");
    let o = run_line("split -o {} {}", &[&dir.path().join("o"), &missing]);
    assert_fails_with(&o, &["no-such-file.dcm"]);
    let o = run_line(
        "combine -o {} {} {}",
        &[&dir.path().join("x"), &missing, &dir.path().join("other")],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-file.dcm"), "{}", stderr(&o));
}

#[test]
fn existing_output_refused_unless_forced() {
    let s = split(2, 3, 2000, 10);
    let out = s.dir.path().join("out");
    fs::write(&out, b"precious").unwrap();
    let o = combine(&out, &s.shares[..2], &[]);
    assert_fails_with(&o, &["already exists", "--force"]);
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    let o = combine(&out, &s.shares[..2], &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), s.original);
    // Splitting again into the same directory is refused too, and leaves
    // the earlier shares as they were.
    let before = fs::read(&s.shares[0]).unwrap();
    let o = run_line(
        "split -t 2 -n 3 -o {} {}",
        &[&s.shares[0].parent().unwrap(), &s.input],
    );
    assert_fails_with(&o, &["already exists"]);
    assert_eq!(fs::read(&s.shares[0]).unwrap(), before);
    assert_no_partials(s.shares[0].parent().unwrap());
}

/// A file name that is not UTF-8 names its shares and comes back from
/// combine byte for byte, never as its lossy `n\u{FFFD}ame` form; repair
/// names its output after the share's bytes too.
#[test]
fn names_that_are_not_utf8_survive_split_combine_and_repair() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"n\xffame");
    let input = dir.path().join(name);
    fs::write(&input, pseudo_random(5000, 3)).unwrap();
    let out = dir.path().join("s");
    let o = run_line("split -t 2 -n 3 -o {} {}", &[&out, &input]);
    assert!(o.status.success(), "{}", stderr(&o));
    let share = out.join(std::ffi::OsStr::from_bytes(b"n\xffame.002.umbra"));
    assert!(
        share.is_file(),
        "{:?}",
        fs::read_dir(&out).unwrap().collect::<Vec<_>>()
    );
    let back = dir.path().join("back");
    fs::create_dir(&back).unwrap();
    let o = run_line(
        "combine -o {} {} {}",
        &[
            &back,
            &share,
            &out.join(std::ffi::OsStr::from_bytes(b"n\xffame.003.umbra")),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(back.join(name)).unwrap(), pseudo_random(5000, 3));
    fs::remove_file(out.join(std::ffi::OsStr::from_bytes(b"n\xffame.001.umbra"))).unwrap();
    let o = run_line(
        "repair --x 1 {} {}",
        &[
            &share,
            &out.join(std::ffi::OsStr::from_bytes(b"n\xffame.003.umbra")),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.join(std::ffi::OsStr::from_bytes(b"n\xffame.001.umbra"))
            .is_file()
    );
}
