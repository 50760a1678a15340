//! Interop with libgfshare's gfsplit and gfcombine (Debian package
//! libgfshare-bin), both directions, on random files. These tools are an
//! external oracle for the field (0x11D) and the point convention. The test
//! fails, never skips, when they are missing: .ci/run installs them.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::*;

fn tool(name: &str) -> Command {
    assert!(
        on_path(name).is_some(),
        "{name} is not installed: apt-get install -y libgfshare-bin (CI does this)"
    );
    Command::new(name)
}

#[test]
fn gfsplit_shares_combine_in_umbra() {
    for (i, len) in [1usize, 1000, 300_000].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("secret.bin");
        let data = pseudo_random(len, 100 + i as u64);
        fs::write(&input, &data).unwrap();
        let stem = dir.path().join("gf");
        let o = tool("gfsplit")
            .args(["-n", "4", "-m", "8"])
            .arg(&input)
            .arg(&stem)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "gfsplit: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut shares: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("gf."))
            .collect();
        shares.sort();
        assert_eq!(shares.len(), 8);
        let out = dir.path().join("out.bin");
        let o = run_line(
            "combine --format gfshare -o {} {} {} {} {}",
            &[&out, &shares[1], &shares[6], &shares[3], &shares[4]],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(fs::read(&out).unwrap(), data, "length {len}");
    }
}

#[test]
fn umbra_gfshare_shares_combine_in_gfcombine() {
    for (i, len) in [1usize, 4097, 300_000].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("secret.bin");
        let data = pseudo_random(len, 200 + i as u64);
        fs::write(&input, &data).unwrap();
        let out_dir = dir.path().join("shares");
        let o = run_line(
            "split --format gfshare -t 3 -n 5 -o {} {}",
            &[&out_dir, &input],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let shares = files_ending(&out_dir, "");
        assert_eq!(shares.len(), 5);
        assert!(shares[0].to_string_lossy().ends_with("secret.bin.001"));
        let out = dir.path().join("gfcombined.bin");
        let o = tool("gfcombine")
            .arg("-o")
            .arg(&out)
            .args([&shares[4], &shares[0], &shares[2]])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "gfcombine: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(fs::read(&out).unwrap(), data, "length {len}");
    }
}
