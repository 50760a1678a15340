//! `--backend`, `--simd` and `--cross-check`: where the arithmetic runs.

use super::*;

#[test]
fn simd_override_cannot_exceed_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f");
    fs::write(&input, b"abc").unwrap();
    let foreign = if cfg!(target_arch = "x86_64") {
        "neon"
    } else {
        "avx2"
    };
    let o = run_line(
        "--simd {} split -o {} {}",
        &[&foreign, &dir.path().join("o"), &input],
    );
    assert_fails_with(&o, &[foreign, "lacks"]);
    let o = umbra()
        .env("UMBRA_SIMD", "portable")
        .args(["-v", "split", "-t", "2", "-n", "2", "-o"])
        .arg(dir.path().join("p"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("cpu (portable)"), "{}", stderr(&o));
}

/// `--backend gpu` runs on the best adapter there is (Mesa's software Vulkan
/// in CI) and says which; its shares combine on the CPU, and the other way.
#[test]
fn gpu_backend_round_trip_and_names_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    let data = pseudo_random(200_000, 13);
    fs::write(&input, &data).unwrap();
    let out = dir.path().join("shares");
    let o = umbra()
        .args(["--backend", "gpu", "split", "-t", "3", "-n", "5", "-o"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("backend: gpu ("), "{}", stderr(&o));
    let shares = files_ending(&out, ".umbra");
    let restored = dir.path().join("restored.bin");
    let o = umbra()
        .args(["--backend", "cpu", "combine", "-o"])
        .arg(&restored)
        .args(&shares[2..])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&restored).unwrap(), data);
    let again = dir.path().join("again.bin");
    let o = umbra()
        .args(["--backend", "gpu", "combine", "-o"])
        .arg(&again)
        .args(&shares[..3])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&again).unwrap(), data);
}

/// `--cross-check` computes on two backends and agrees.
#[test]
fn cross_check_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    fs::write(&input, pseudo_random(70_000, 14)).unwrap();
    let o = umbra()
        .args(["--cross-check", "split", "-t", "2", "-n", "3", "-o"])
        .arg(dir.path().join("s"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("cross-checked with"), "{}", stderr(&o));
}

/// With no Vulkan driver at all: `--backend gpu` is a clear error, and
/// `--backend auto` quietly uses the CPU even for a job large enough to
/// want a GPU.
#[test]
fn no_adapter_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    let data = pseudo_random(50_000, 15);
    fs::write(&input, &data).unwrap();
    let no_driver = |c: &mut std::process::Command| {
        c.env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .env("WGPU_BACKEND", "vulkan");
    };
    let mut c = umbra();
    no_driver(&mut c);
    let o = c
        .args(["--backend", "gpu", "split", "-o"])
        .arg(dir.path().join("g"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--backend gpu"), "{}", stderr(&o));
    assert!(
        !dir.path().join("g").exists() || files_ending(&dir.path().join("g"), ".umbra").is_empty()
    );

    let mut c = umbra();
    no_driver(&mut c);
    let o = c
        .env("UMBRA_AUTO_GPU_MIN_BYTES", "1")
        .args([
            "-v",
            "--backend",
            "auto",
            "split",
            "-t",
            "2",
            "-n",
            "2",
            "-o",
        ])
        .arg(dir.path().join("a"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no hardware GPU") && err.contains("backend: cpu ("),
        "{err}"
    );
}
