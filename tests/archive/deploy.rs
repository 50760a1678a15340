//! The deployment files (deploy/): the Kubernetes Job validated against the
//! Kubernetes API schemas (kubernetes-validate, offline), and both it and
//! the Slurm script run here as the engines would run them, several
//! workers at once on one PostgreSQL catalog.

use super::*;
use umbra::share::format::SchemeKind;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// PATH with the umbra under test first.
fn path_with_umbra() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_umbra")).parent().unwrap();
    let mut p = std::ffi::OsString::from(bin);
    p.push(":");
    p.push(std::env::var_os("PATH").unwrap_or_default());
    p
}

/// The files of the source dated two days back (older than --older-than 1d).
fn age_source(src: &Path) {
    for f in all_files(src) {
        let o = std::process::Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success());
    }
}

fn written(pg: &postgres::Postgres, db: &str) -> (i64, i64) {
    let mut c = pg.client(db);
    let r = c
        .query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'written') FROM objects",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

#[test]
fn kubernetes_job_is_valid_and_its_command_line_works() {
    let yaml = repo("deploy/kubernetes/umbra-migrate.yaml");
    let tool = find_tool(
        "UMBRA_KUBERNETES_VALIDATE",
        "kubernetes-validate",
        &[],
        "pip install kubernetes-validate==1.37.0",
    );
    let o = std::process::Command::new(&tool)
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(&yaml)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubernetes-validate: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let text = fs::read_to_string(&yaml).unwrap();
    for field in [
        "completionMode: Indexed",
        "batch.kubernetes.io/controller-uid",
        "name: UMBRA_RUN_ID",
        "name: UMBRA_CATALOG_PASSWORD",
        "secretName: umbra-site-key",
    ] {
        assert!(text.contains(field), "the Job lacks {field}");
    }
    // The umbra.toml of the ConfigMap is one umbra accepts.
    let toml: String = text
        .split("umbra.toml: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with("---"))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let cfg = tempfile::tempdir().unwrap();
    fs::write(cfg.path().join("umbra.toml"), &toml).unwrap();
    let config = umbra::archive::config::Config::load(cfg.path()).unwrap();
    let layout = config.layout(&cfg.path().join("umbra.toml")).unwrap();
    assert_eq!((layout.threshold.t(), layout.threshold.n()), (4, 8));
    assert_eq!(layout.store_names.len(), 4);
    assert!(matches!(
        config.catalog_location(cfg.path()).unwrap(),
        umbra::archive::catalog::Location::Postgres { .. }
    ));
    // Its command line, with this machine's archive and source: three
    // pods of one Job (one controller uid) on one catalog.
    let args_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("args: ["))
        .unwrap();
    let args: Vec<String> =
        serde_json::from_str(args_line.trim_start().strip_prefix("args: ").unwrap()).unwrap();
    let pg = postgres::Postgres::start();
    let url = pg.database("k8s");
    let f = fixture_on(2, 4, 4, SchemeKind::Compact, Some(&url));
    age_source(&f.src);
    let mut args = args.clone();
    for (flag, value) in [
        ("-C", f.arc.to_str().unwrap()),
        ("--source", f.src.to_str().unwrap()),
        ("--older-than", "1d"),
    ] {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1] = value.to_string();
    }
    assert_eq!(args[0], "migrate");
    let pods: Vec<Child> = (0..3)
        .map(|i| {
            umbra()
                .args(&args)
                .env("UMBRA_BACKEND", "cpu")
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .env("UMBRA_RUN_ID", "0b6f2c1e-job-uid")
                .env("UMBRA_CATALOG_PASSWORD", postgres::PASSWORD)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for p in pods {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "pod: {}", stderr(&o));
        total += json(&o)["written"].as_u64().unwrap();
    }
    assert_eq!(total, SMALL_FILES as u64);
    assert_eq!(
        written(&pg, "k8s"),
        (SMALL_FILES as i64, SMALL_FILES as i64)
    );
}

#[test]
fn slurm_array_script_runs_as_slurm_would_run_it() {
    let script = repo("deploy/slurm/umbra-migrate.sbatch");
    let o = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "bash -n: {}", stderr(&o));
    let text = fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --array="));
    let pg = postgres::Postgres::start();
    let url = pg.database("slurm");
    let f = fixture_on(2, 4, 4, SchemeKind::Shamir, Some(&url));
    age_source(&f.src);
    // The password from the 0600 file umbra.toml names, as on a cluster.
    let pw = f.arc.join("catalog.pw");
    fs::write(&pw, postgres::PASSWORD).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let toml = fs::read_to_string(f.arc.join("umbra.toml")).unwrap();
    fs::write(
        f.arc.join("umbra.toml"),
        format!("catalog_password_file = \"catalog.pw\"\n{toml}"),
    )
    .unwrap();
    let tasks: Vec<Child> = (0..3)
        .map(|i| {
            std::process::Command::new("bash")
                .arg(&script)
                .env("PATH", path_with_umbra())
                .env("UMBRA_BACKEND", "cpu")
                .env_remove("UMBRA_CATALOG_PASSWORD")
                .env_remove("PGPASSWORD")
                .env("UMBRA_ARCHIVE", &f.arc)
                .env("UMBRA_SOURCE", &f.src)
                .env("UMBRA_OLDER_THAN", "1d")
                .env("SLURM_ARRAY_JOB_ID", "4242")
                .env("SLURM_ARRAY_TASK_ID", i.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut reports = Vec::new();
    for t in tasks {
        let o = t.wait_with_output().unwrap();
        assert!(o.status.success(), "array task: {}", stderr(&o));
        reports.push(json(&o));
    }
    let total: u64 = reports.iter().map(|r| r["written"].as_u64().unwrap()).sum();
    assert_eq!(total, SMALL_FILES as u64, "{reports:?}");
    // The task ids are the workers' indexes; the array job id the run.
    for (i, r) in reports.iter().enumerate() {
        assert!(
            r["worker"].as_str().unwrap().starts_with(&format!("{i}@")),
            "{r}"
        );
    }
    let record: String = pg
        .client("slurm")
        .query_one("SELECT value FROM meta WHERE key LIKE 'scan %'", &[])
        .unwrap()
        .get(0);
    assert!(record.contains("\"run\":\"4242\""), "{record}");
    assert_eq!(
        written(&pg, "slurm"),
        (SMALL_FILES as i64, SMALL_FILES as i64)
    );
}
