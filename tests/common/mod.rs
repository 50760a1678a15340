//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod postgres;
pub mod store_contract;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real `umbra` binary built by cargo for these tests.
pub fn umbra() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_umbra"));
    c.env_remove("UMBRA_SIMD").env_remove("UMBRA_THREADS");
    c
}

pub fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = umbra();
    for a in args {
        c.arg(a.as_ref());
    }
    c.output().expect("umbra runs")
}

/// `umbra` with the words of `line`, each `{}` taking the next of `args`
/// (paths, numbers): `run_line("split -t 2 -o {} {}", &[&out, &input])`.
pub fn run_line(line: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = umbra();
    let mut args = args.iter();
    for word in line.split_whitespace() {
        if word == "{}" {
            c.arg(args.next().expect("an argument for every {}").as_ref());
        } else {
            c.arg(word);
        }
    }
    assert!(
        args.next().is_none(),
        "more arguments than {{}} in {line:?}"
    );
    c.output().expect("umbra runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Deterministic bytes, different per seed: the crate's one test-data generator.
pub use umbra::tools::synthetic::pseudo_random;

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Files in `dir` whose names end with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// No temporary or partial files left behind in `dir`.
pub fn assert_no_partials(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains(".partial"),
            "left-over temporary file {name} in {}",
            dir.display()
        );
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The JSON a successful command printed on stdout.
pub fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// Where `name` is on PATH, if it is: for the real external programs the
/// tests use (gfsplit, Orthanc, s3s-fs), whose absence must fail a test
/// with an install hint, never skip it.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// Every file under `dir`, as a multiset of SHA-256 hashes: two trees
/// compare equal when they hold the same bytes, whatever the layout.
pub fn tree_hashes(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                *m.entry(sha256_hex(&std::fs::read(&p).expect("file")))
                    .or_default() += 1;
            }
        }
    }
    m
}

/// Share files of many small objects split together by
/// `split::split_whole_streams` on `backend`, against each object split
/// alone by `split::split_stream` on the portable CPU path, with the same
/// fixed secrets: every file must be the same, byte for byte (header, tag,
/// segment table, payload). Streams of 1 (empty content) to a few segments,
/// around the 4 KiB segments and 8 KiB batches of the per-object path.
pub fn check_whole_streams_match_split_stream(
    backend: &dyn umbra::engine::Backend,
    t: usize,
    n: usize,
    scheme: umbra::share::format::SchemeKind,
) {
    use std::io::Cursor;
    use umbra::engine::CpuBackend;
    use umbra::kernel::Level;
    use umbra::share::envelope::ObjectMeta;
    use umbra::share::format::HASH_LEN;
    use umbra::share::writer::ShareWriter;
    use umbra::sharing::{SplitPlan, Threshold, default_xs};
    use umbra::stream::split::{
        SplitBuffers, SplitOptions, SplitSecrets, WholeStream, split_stream, split_whole_streams,
    };

    let plan = SplitPlan::new(Threshold::new(t, n).unwrap(), default_xs(n)).unwrap();
    let mut opts = SplitOptions::new(plan).with_scheme(scheme);
    opts.segment_size = 4096;
    opts.batch_bytes = 8192;
    let secrets = |i: usize| {
        SplitSecrets::fixed(
            [i as u8 + 1; 32],
            std::array::from_fn(|b| (b + 7 * i) as u8),
            [0xC0 ^ i as u8; 16],
        )
    };
    // Whole-stream lengths; the first objects have no content at all.
    let stream_lens = [
        0, 0, 4095, 4096, 4097, 8191, 8192, 8193, 12_289, 20_000, 70_001, 9000,
    ];
    let objects: Vec<(ObjectMeta, Vec<u8>)> = stream_lens
        .iter()
        .enumerate()
        .map(|(i, &stream_len)| {
            let mut meta = ObjectMeta {
                name: format!("series/{i}.dcm").into_bytes(),
                content_type: "application/octet-stream".into(),
                content_len: 0,
            };
            meta.content_len = (stream_len as u64).saturating_sub(meta.prefix_len() as u64);
            let content = pseudo_random(meta.content_len as usize, 100 + i as u64);
            (meta, content)
        })
        .collect();
    let writers =
        |meta: &ObjectMeta, secrets: &SplitSecrets| -> Vec<ShareWriter<Cursor<Vec<u8>>>> {
            opts.plan
                .xs()
                .iter()
                .map(|&x| {
                    let header = opts.share_header(x, meta.stream_len(), secrets);
                    ShareWriter::new(Cursor::new(Vec::new()), header).unwrap()
                })
                .collect()
        };
    let files = |ws: Vec<ShareWriter<Cursor<Vec<u8>>>>, tag: [u8; HASH_LEN]| -> Vec<Vec<u8>> {
        ws.into_iter()
            .map(|w| w.finish(tag).unwrap().into_inner())
            .collect()
    };

    let portable = CpuBackend::new(Level::Portable).unwrap();
    let alone: Vec<Vec<Vec<u8>>> = objects
        .iter()
        .enumerate()
        .map(|(i, (meta, content))| {
            let secrets = secrets(i);
            let prefix = meta.encode_prefix(&secrets.check_key).unwrap();
            let mut ws = writers(meta, &secrets);
            let tag = split_stream(
                &portable,
                &opts,
                &secrets,
                &prefix,
                &mut &content[..],
                meta.content_len,
                &mut ws,
                &mut |_| {},
            )
            .unwrap();
            files(ws, tag)
        })
        .collect();

    // All objects in one call, then a smaller batch in the same buffers
    // (stale shares of the first left in them), then one object alone.
    let mut bufs = SplitBuffers::default();
    for range in [0..objects.len(), 3..7, 10..11] {
        let all_secrets: Vec<SplitSecrets> = range.clone().map(secrets).collect();
        let streams: Vec<Vec<u8>> = range
            .clone()
            .zip(&all_secrets)
            .map(|(i, s)| {
                let (meta, content) = &objects[i];
                let mut stream = meta.encode_prefix(&s.check_key).unwrap().to_vec();
                stream.extend_from_slice(content);
                stream
            })
            .collect();
        let mut all_writers: Vec<Vec<ShareWriter<Cursor<Vec<u8>>>>> = range
            .clone()
            .zip(&all_secrets)
            .map(|(i, s)| writers(&objects[i].0, s))
            .collect();
        let mut whole: Vec<WholeStream<'_, Cursor<Vec<u8>>>> = all_secrets
            .iter()
            .zip(&streams)
            .zip(all_writers.iter_mut())
            .map(|((secrets, stream), writers)| WholeStream {
                secrets,
                stream,
                writers,
            })
            .collect();
        let tags = split_whole_streams(&mut bufs, backend, &opts, &mut whole)
            .unwrap_or_else(|e| panic!("{}: split_whole_streams failed: {e}", backend.describe()));
        drop(whole);
        for ((i, ws), tag) in range.clone().zip(all_writers).zip(tags) {
            let tag = tag.unwrap_or_else(|(s, e)| panic!("object {i}, share {s}: {e}"));
            let got = files(ws, tag);
            for (s, (g, e)) in got.iter().zip(&alone[i]).enumerate() {
                assert_eq!(g.len(), e.len(), "object {i}, share {s}: file length");
                if let Some(at) = g.iter().zip(e).position(|(a, b)| a != b) {
                    panic!(
                        "{}: ({t},{n}) batch {range:?}, object {i} (stream of {} bytes), \
                         share file {s} differs from split_stream's at byte {at}",
                        backend.describe(),
                        objects[i].0.stream_len()
                    );
                }
            }
        }
    }
}

/// A free TCP port on loopback (bound, then let go for a server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port`; panics naming `what`
/// after `limit`.
pub fn wait_listening(port: u16, what: &str, limit: std::time::Duration) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < limit,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A server or tool the tests need: $`env`, then the first of `also` that
/// exists, then `name` on PATH. Missing, the test FAILS with `install` (how
/// to get it); it never skips.
pub fn find_tool(env: &str, name: &str, also: &[PathBuf], install: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    if let Some(p) = also.iter().find(|p| p.is_file()) {
        return p.clone();
    }
    if let Some(p) = on_path(name) {
        return p;
    }
    panic!("{name} is not installed. Install it with {install}, or point {env} at it");
}

/// The command `umbra WORD -C ARC REST...` on the CPU backend, with `env`
/// set, for a caller that changes it further.
pub fn umbra_at_cmd(
    arc: &Path,
    args: &[&str],
    env: &[(&str, &dyn AsRef<std::ffi::OsStr>)],
) -> Command {
    // -C belongs to the (sub)command: after `key rotate`, `audit verify`.
    let two = matches!(
        args.first(),
        Some(&"config") | Some(&"audit") | Some(&"key")
    );
    let (words, rest) = args.split_at(if two { 2 } else { 1 }.min(args.len()));
    let mut c = umbra();
    c.env("UMBRA_BACKEND", "cpu").env_remove("UMBRA_ARCHIVE");
    for (k, v) in env {
        c.env(k, v.as_ref());
    }
    c.args(words).arg("-C").arg(arc).args(rest);
    c
}

/// `umbra WORD -C ARC REST...` on the CPU backend, with `env` set.
pub fn umbra_at(arc: &Path, args: &[&str], env: &[(&str, &dyn AsRef<std::ffi::OsStr>)]) -> Output {
    umbra_at_cmd(arc, args, env).output().unwrap()
}

/// `umbra init` of a (t, n) archive at `arc` (with `stores` stores, else n),
/// which must succeed.
pub fn init_archive(arc: &Path, t: usize, n: usize, stores: Option<usize>) {
    init_archive_with(arc, t, n, stores, "shamir")
}

/// [`init_archive`] with `--scheme`.
pub fn init_archive_with(arc: &Path, t: usize, n: usize, stores: Option<usize>, scheme: &str) {
    let mut c = umbra();
    c.args([
        "init",
        "-t",
        &t.to_string(),
        "-n",
        &n.to_string(),
        "--scheme",
        scheme,
    ]);
    if let Some(k) = stores {
        c.args(["--stores", &k.to_string()]);
    }
    let o = c.arg(arc).output().unwrap();
    assert!(o.status.success(), "init: {}", stderr(&o));
}

/// A source folder `dir` holding copies of the bundled DICOM files `names`
/// (of datasets/dicom/).
pub fn dicom_source(dir: &Path, names: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for f in names {
        std::fs::copy(repo_file(&format!("datasets/dicom/{f}")), dir.join(f)).unwrap();
    }
    dir.to_path_buf()
}

/// A store URL of a kind built without its Cargo feature is refused with
/// the feature to build with.
pub fn assert_needs_feature(url: &str, feature: &str) {
    let e = umbra::archive::store::open("s", url, None, None, Path::new("."))
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains(&format!("--features {feature}")),
        "{e}"
    );
}
