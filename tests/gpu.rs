//! GPU backend against the CPU backend: exact equality on awkward lengths,
//! offsets, slice boundaries and (t, n), plus naga validation of every shader.
//!
//! These tests never skip. They need a wgpu adapter: a hardware GPU, or
//! Mesa's software Vulkan (llvmpipe), which CI installs with
//! `apt-get install -y mesa-vulkan-drivers libvulkan1`. A machine without any
//! adapter fails them, with a message that says so.
//!
//! `UMBRA_GPU_TESTS`: `hardware` refuses software adapters (for
//! `scripts/gpu-check.sh` on a real GPU); `required` or anything else, or
//! unset, takes the best adapter there is, software included, and still
//! fails when there is none.

mod common;

use std::sync::OnceLock;

use umbra::share::format::SchemeKind;
use umbra::sharing::{SplitPlan, combine_matrix, repair_matrix};

use umbra::engine::{Backend, CpuBackend};
use umbra::gpu::shaders::{self, PipelineSource, ShaderFile};
use umbra::gpu::{AdapterChoice, ApplyJob, GpuBackend, GpuError, SplitJob};
use umbra::keystream::{self, ObjectKey};
use umbra::sharing::{Matrix, Threshold, default_xs};

/// Slice size of the small-slice backend: boundary tests cross it cheaply.
const SMALL_SLICE: usize = 4096;

fn choice() -> AdapterChoice {
    match std::env::var("UMBRA_GPU_TESTS").as_deref() {
        Ok("hardware") => AdapterChoice::HardwareOnly,
        _ => AdapterChoice::Any,
    }
}

fn open(max_slice: Option<usize>) -> GpuBackend {
    let backend = GpuBackend::new(choice()).unwrap_or_else(|e| {
        panic!(
            "GPU tests need a wgpu adapter ({e}). These tests never skip: on a machine \
             without a GPU install software Vulkan (apt-get install -y mesa-vulkan-drivers \
             libvulkan1); UMBRA_GPU_TESTS=hardware accepts only a hardware GPU."
        )
    });
    match max_slice {
        Some(bytes) => backend.with_max_slice_bytes(bytes),
        None => backend,
    }
}

/// The default backend, shared by the tests of this file.
fn gpu() -> &'static GpuBackend {
    static GPU: OnceLock<GpuBackend> = OnceLock::new();
    GPU.get_or_init(|| {
        let g = open(None);
        eprintln!("GPU tests on {}", g.describe());
        g
    })
}

/// A backend with 4 KiB slices.
fn small_gpu() -> &'static GpuBackend {
    static GPU: OnceLock<GpuBackend> = OnceLock::new();
    GPU.get_or_init(|| open(Some(SMALL_SLICE)))
}

fn cpu() -> &'static CpuBackend {
    static CPU: OnceLock<CpuBackend> = OnceLock::new();
    CPU.get_or_init(CpuBackend::detect)
}

fn key(seed: u8) -> ObjectKey {
    ObjectKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ seed))
}

/// Test data: the crate's noise bytes.
fn data(len: usize, seed: u64) -> Vec<u8> {
    umbra::tools::synthetic::pseudo_random(len, seed)
}

/// Exact equality, or a panic that names backend, case and first differing offset.
fn assert_same(backend: &dyn Backend, case: &str, expected: &[Vec<u8>], got: &[Vec<u8>]) {
    assert_eq!(expected.len(), got.len(), "{case}: output count");
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        assert_eq!(e.len(), g.len(), "{case}: output {i} length");
        if let Some(at) = e.iter().zip(g).position(|(a, b)| a != b) {
            panic!(
                "{} differs from {} in {case}: output {i}, first differing offset {at} \
                 (expected {:#04x}, got {:#04x})",
                backend.describe(),
                cpu().describe(),
                e[at],
                g[at]
            );
        }
    }
}

fn split_with(
    backend: &dyn Backend,
    plan: &SplitPlan,
    key: &ObjectKey,
    offset: u64,
    secret: &[u8],
) -> Vec<Vec<u8>> {
    let n = plan.threshold().n();
    // Filled with a pattern, so that bytes left unwritten show up.
    let mut shares = vec![vec![0xA5u8; secret.len()]; n];
    let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
    backend
        .split(plan, key, offset, secret, &mut refs)
        .unwrap_or_else(|e| panic!("{} split failed: {e}", backend.describe()));
    shares
}

fn apply_with(backend: &dyn Backend, matrix: &Matrix, inputs: &[&[u8]]) -> Vec<Vec<u8>> {
    let len = inputs.first().map_or(0, |i| i.len());
    let mut outs = vec![vec![0xA5u8; len]; matrix.rows()];
    let mut refs: Vec<&mut [u8]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    backend
        .apply(matrix, inputs, &mut refs)
        .unwrap_or_else(|e| panic!("{} apply failed: {e}", backend.describe()));
    outs
}

fn plan(t: usize, n: usize) -> SplitPlan {
    SplitPlan::new(Threshold::new(t, n).unwrap(), default_xs(n)).unwrap()
}

/// Split on `gpu` equals split on the CPU.
fn check_split(gpu: &GpuBackend, t: usize, n: usize, offset: u64, len: usize) {
    let plan = plan(t, n);
    let key = key((t * 7 + n) as u8);
    let secret = data(len, offset ^ len as u64);
    let expected = split_with(cpu(), &plan, &key, offset, &secret);
    let got = split_with(gpu, &plan, &key, offset, &secret);
    assert_same(
        gpu,
        &format!("split ({t},{n}) length {len} offset {offset}"),
        &expected,
        &got,
    );
}

const LENGTHS: [usize; 11] = [0, 1, 3, 4, 5, 63, 64, 65, 4095, 4096, 4097];

#[test]
fn split_matches_cpu_on_awkward_lengths_and_offsets() {
    for (t, n) in [(2, 2), (4, 8), (8, 16)] {
        for offset in [0u64, 1, 61, 64, 1000] {
            for len in LENGTHS {
                check_split(gpu(), t, n, offset, len);
            }
        }
    }
}

#[test]
fn split_255_of_255_matches_cpu() {
    for (offset, len) in [(0u64, 1usize), (7, 100), (64, 129)] {
        check_split(gpu(), 255, 255, offset, len);
    }
}

#[test]
fn split_matches_cpu_around_slice_boundaries() {
    let g = small_gpu();
    for len in [
        SMALL_SLICE - 1,
        SMALL_SLICE,
        SMALL_SLICE + 1,
        3 * SMALL_SLICE + 5,
    ] {
        for offset in [0u64, 13, 64 * 3, SMALL_SLICE as u64 - 1] {
            check_split(g, 4, 8, offset, len);
        }
    }
    check_split(g, 2, 3, 5, 2 * SMALL_SLICE - 1);
}

#[test]
fn split_matches_cpu_past_2_pow_38() {
    // 2^38 bytes = 2^32 blocks: the block counter wraps and the nonce's
    // high word goes from 0 to 1 inside these ranges.
    let wrap = 1u64 << 38;
    for (offset, len) in [
        (wrap - 100, 300usize),
        (wrap, 64),
        (wrap + 3, 77),
        ((5 << 38) + 77, 4097),
    ] {
        check_split(gpu(), 4, 8, offset, len);
    }
    // The wrap exactly on and near a slice boundary.
    for offset in [
        wrap - SMALL_SLICE as u64,
        wrap - SMALL_SLICE as u64 - 5,
        wrap - 1,
    ] {
        check_split(small_gpu(), 3, 5, offset, 3 * SMALL_SLICE + 1);
    }
}

/// With a zero secret and x = 1, share 1 of a (2, n) split is coefficient
/// stream 1 itself: the GPU keystream, read directly, equals `keystream::fill`.
#[test]
fn gpu_keystream_equals_cpu_keystream() {
    let plan = plan(2, 2);
    let key = key(42);
    for (offset, len) in [
        (0u64, 64usize),
        (5, 1000),
        ((1 << 38) - 64, 128),
        (u64::MAX - 300, 200),
    ] {
        let shares = split_with(gpu(), &plan, &key, offset, &vec![0u8; len]);
        let mut expected = vec![0u8; len];
        keystream::fill(&key, 1, offset, &mut expected);
        assert_same(
            gpu(),
            &format!("keystream j=1 offset {offset} length {len}"),
            &[expected],
            &shares[..1],
        );
    }
}

fn check_combine_and_repair(gpu: &GpuBackend, t: usize, n: usize, len: usize) {
    let plan = plan(t, n);
    let key = key(9);
    let secret = data(len, 77 + len as u64);
    let shares = split_with(cpu(), &plan, &key, 0, &secret);
    // Shares taken out of order, not the first t.
    let pick: Vec<usize> = (0..t).map(|i| (i * 3 + 1) % n).collect();
    let mut seen = std::collections::HashSet::new();
    let pick: Vec<usize> = pick
        .into_iter()
        .chain(0..n)
        .filter(|i| seen.insert(*i))
        .take(t)
        .collect();
    let xs: Vec<u8> = pick.iter().map(|&i| plan.xs()[i]).collect();
    let inputs: Vec<&[u8]> = pick.iter().map(|&i| shares[i].as_slice()).collect();

    let combine = combine_matrix(&xs).unwrap();
    let case = format!("combine ({t},{n}) length {len}");
    let expected = apply_with(cpu(), &combine, &inputs);
    assert_eq!(expected[0], secret, "CPU combine round trip");
    assert_same(gpu, &case, &expected, &apply_with(gpu, &combine, &inputs));

    let lost: Vec<u8> = (0..n)
        .filter(|i| !pick.contains(i))
        .map(|i| plan.xs()[i])
        .take(2)
        .collect();
    if !lost.is_empty() {
        let repair = repair_matrix(&xs, &lost).unwrap();
        let case = format!("repair of {lost:?} ({t},{n}) length {len}");
        let expected = apply_with(cpu(), &repair, &inputs);
        assert_same(gpu, &case, &expected, &apply_with(gpu, &repair, &inputs));
    }
}

#[test]
fn combine_and_repair_match_cpu() {
    for (t, n) in [(2, 2), (4, 8), (8, 16)] {
        for len in LENGTHS {
            check_combine_and_repair(gpu(), t, n, len);
        }
    }
    check_combine_and_repair(gpu(), 255, 255, 33);
    for len in [SMALL_SLICE - 1, SMALL_SLICE + 1, 5 * SMALL_SLICE + 3] {
        check_combine_and_repair(small_gpu(), 4, 8, len);
    }
}

/// A 17 MiB object, one default slice: more than 65,535 workgroups of words,
/// so the apply grid spills into y; a size
/// that keeps a debug run on llvmpipe short.
#[test]
fn medium_object_matches_cpu() {
    let len = (17 << 20) + 13;
    check_split(gpu(), 4, 8, 1000, len);
    check_combine_and_repair(gpu(), 4, 8, len);
}

/// A 300 MiB object (the size of a 512 x 512 x 300 16-bit volume, with
/// headroom), split (4, 8) and combined from 4 shares on the GPU, equal to
/// the CPU. About 4 minutes in a debug build on llvmpipe (2 cores), so it is
/// ignored by default; `scripts/gpu-check.sh` runs it in release mode.
#[test]
#[ignore = "300 MiB: minutes in debug on llvmpipe; run by scripts/gpu-check.sh in release"]
fn large_object_matches_cpu() {
    let len = 300 << 20;
    check_split(gpu(), 4, 8, 123, len);
    check_combine_and_repair(gpu(), 4, 8, len);
}

#[test]
fn describe_names_the_adapter() {
    let d = gpu().describe();
    assert!(
        d.starts_with("gpu (") && d.contains(&gpu().adapter_info().name),
        "{d}"
    );
}

#[test]
fn hardware_only_refuses_software_adapters() {
    match GpuBackend::new(AdapterChoice::HardwareOnly) {
        Ok(g) => assert!(!g.is_software(), "HardwareOnly took {}", g.describe()),
        Err(GpuError::NoAdapter { .. }) => {}
        Err(e) => panic!("HardwareOnly failed other than with NoAdapter: {e}"),
    }
}

#[test]
fn broken_shader_is_named_in_the_error() {
    const BROKEN: ShaderFile = ShaderFile {
        path: "shaders/broken.wgsl",
        source: "@compute @workgroup_size(64) fn main() { let x: u32 = ; }",
    };
    let source = PipelineSource {
        entry_file: BROKEN,
        entry_point: "main",
        needs: &[shaders::BINDINGS],
    };
    match gpu().check_compiles(&source) {
        Err(GpuError::ShaderCompile { shader, .. }) => {
            assert!(shader.contains("shaders/broken.wgsl"), "{shader}")
        }
        other => panic!("expected a compile error naming the shader, got {other:?}"),
    }
    for p in shaders::ALL_PIPELINES {
        gpu().check_compiles(&p).unwrap();
    }
}

fn naga_validate(name: &str, text: &str) {
    let module = naga::front::wgsl::parse_str(text)
        .unwrap_or_else(|e| panic!("{name} does not parse: {}", e.emit_to_string(text)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name} does not validate: {}", e.emit_to_string(text)));
}

#[test]
fn every_shader_validates_with_naga() {
    // Library files stand alone; entry files need theirs first.
    for file in [shaders::BINDINGS, shaders::KEYSTREAM, shaders::KERNEL] {
        naga_validate(file.path, file.source);
    }
    for p in shaders::ALL_PIPELINES {
        naga_validate(&p.name(), &p.source());
    }
}

/// A dense 255 x 255 matrix of constants with many bits set: the most work
/// per invocation. A looped multiply once gave silently wrong rows here on
/// llvmpipe (its loop limit); the kernel is now loop-free.
#[test]
fn dense_255_matrix_matches_cpu() {
    let (rows, cols) = (255usize, 255usize);
    let inputs: Vec<Vec<u8>> = (0..cols).map(|i| data(37, i as u64 + 5)).collect();
    let refs: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    for fill in [0xFFu8, 0x53] {
        let entries = (0..rows * cols)
            .map(|i| if i % 7 == 0 { fill ^ 0x80 } else { fill })
            .collect();
        let m = Matrix::new(rows, cols, entries);
        let expected = apply_with(cpu(), &m, &refs);
        let got = apply_with(gpu(), &m, &refs);
        assert_same(
            gpu(),
            &format!("dense 255 x 255 apply, entries ~{fill:#04x}, length 37"),
            &expected,
            &got,
        );
    }
}

/// A device lost before or during a job fails it with an error naming the
/// GPU; it never returns (partial) output as success.
#[test]
fn lost_device_fails_the_job() {
    let g = open(Some(SMALL_SLICE));
    let plan = plan(4, 8);
    let key = key(3);
    let secret = data(3 * SMALL_SLICE + 5, 1);
    split_with(&g, &plan, &key, 0, &secret);
    g.simulate_device_loss();
    let mut shares = vec![vec![0u8; secret.len()]; 8];
    let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
    match g.split(&plan, &key, 0, &secret, &mut refs) {
        Err(umbra::engine::EngineError::Gpu(msg)) => {
            eprintln!("lost device reported as: {msg}");
            assert!(msg.contains("lost") || msg.contains("failed"), "{msg}");
        }
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(()) => panic!("split on a destroyed device reported success"),
    }
}

/// Many objects in one batch (own keys, offsets and lengths, zero included)
/// give the shares each would get alone on the CPU; then a batch combine
/// gives every secret back, equal to the CPU's combine.
fn check_batches(
    gpu: &GpuBackend,
    t: usize,
    n: usize,
    objects: usize,
    len_of: impl Fn(usize) -> usize,
) {
    let plan = plan(t, n);
    let keys: Vec<ObjectKey> = (0..objects).map(|i| key(i as u8)).collect();
    let offsets: Vec<u64> = (0..objects)
        .map(|i| match i % 4 {
            0 => 0,
            1 => (i * 37) as u64,
            2 => (1 << 38) - (i as u64 % 200),
            _ => 64 * i as u64 + 5,
        })
        .collect();
    let secrets: Vec<Vec<u8>> = (0..objects).map(|i| data(len_of(i), i as u64)).collect();
    let mut got: Vec<Vec<Vec<u8>>> = secrets
        .iter()
        .map(|s| vec![vec![0xA5u8; s.len()]; n])
        .collect();
    {
        let mut jobs: Vec<SplitJob<'_>> = got
            .iter_mut()
            .enumerate()
            .map(|(i, shares)| SplitJob {
                key: &keys[i],
                offset: offsets[i],
                secret: &secrets[i],
                shares: shares.iter_mut().map(Vec::as_mut_slice).collect(),
            })
            .collect();
        gpu.split_batch(&plan, &mut jobs)
            .unwrap_or_else(|e| panic!("{} split_batch failed: {e}", gpu.describe()));
    }
    for i in 0..objects {
        let expected = split_with(cpu(), &plan, &keys[i], offsets[i], &secrets[i]);
        let case = format!(
            "split_batch ({t},{n}) object {i} of {objects}, length {}, offset {}",
            secrets[i].len(),
            offsets[i]
        );
        assert_same(gpu, &case, &expected, &got[i]);
    }

    let pick: Vec<usize> = (0..t).map(|i| n - 1 - i).collect();
    let xs: Vec<u8> = pick.iter().map(|&i| plan.xs()[i]).collect();
    let combine = combine_matrix(&xs).unwrap();
    let mut combined: Vec<Vec<u8>> = secrets.iter().map(|s| vec![0xA5u8; s.len()]).collect();
    {
        let mut jobs: Vec<ApplyJob<'_>> = combined
            .iter_mut()
            .zip(&got)
            .map(|(out, shares)| ApplyJob {
                inputs: pick.iter().map(|&i| shares[i].as_slice()).collect(),
                outputs: vec![out.as_mut_slice()],
            })
            .collect();
        gpu.apply_batch(&combine, &mut jobs)
            .unwrap_or_else(|e| panic!("{} apply_batch failed: {e}", gpu.describe()));
    }
    for i in 0..objects {
        let inputs: Vec<&[u8]> = pick.iter().map(|&k| got[i][k].as_slice()).collect();
        let expected = apply_with(cpu(), &combine, &inputs);
        let case = format!(
            "apply_batch combine object {i} of {objects}, length {}",
            secrets[i].len()
        );
        assert_same(gpu, &case, &expected, &combined[i..i + 1]);
        assert_eq!(combined[i], secrets[i], "combine gives object {i} back");
    }
}

#[test]
fn batches_match_cpu() {
    // Awkward lengths, objects spanning 4 KiB slices and sharing them.
    check_batches(small_gpu(), 4, 8, 40, |i| {
        LENGTHS[i % LENGTHS.len()] + (i / LENGTHS.len()) * 1500
    });
    // More objects than one slice's piece table holds (1024).
    check_batches(gpu(), 2, 3, 1500, |i| 1 + i % 70);
    // A small series: 24 objects of about 50 KB.
    check_batches(gpu(), 4, 8, 24, |i| 50_000 + i * 3);
}

/// Small objects split together through `Backend::split_many` (packed into
/// shared dispatches, and across 4 KiB slices) give the share files that
/// each gets split alone on the CPU, byte for byte.
#[test]
fn whole_streams_match_split_stream() {
    for scheme in [SchemeKind::Shamir, SchemeKind::Compact] {
        common::check_whole_streams_match_split_stream(gpu(), 4, 8, scheme);
        common::check_whole_streams_match_split_stream(small_gpu(), 3, 5, scheme);
    }
}

#[test]
fn matrix_over_255_columns_is_refused() {
    let m = Matrix::new(1, 256, vec![1u8; 256]);
    let inputs: Vec<&[u8]> = vec![&[]; 256];
    let mut out: Vec<u8> = Vec::new();
    match gpu().apply(&m, &inputs, &mut [&mut out]) {
        Err(umbra::engine::EngineError::Gpu(msg)) => assert!(msg.contains("256"), "{msg}"),
        other => panic!("expected a matrix size error, got {other:?}"),
    }
}

/// The benchmark helpers run (their figures are not checked: tests never
/// assert a time).
#[test]
fn kernel_timing_helpers_run() {
    let plan = plan(4, 8);
    gpu().kernel_time_split(&plan, 100_000, 2).unwrap();
    let combine = combine_matrix(&[1, 2, 3, 4]).unwrap();
    gpu().kernel_time_apply(&combine, 3, 2).unwrap();
    let secret = data(70_001, 4);
    let mut shares = vec![vec![0u8; secret.len()]; 8];
    let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
    let times = gpu()
        .split_timed(&plan, &key(1), 9, &secret, &mut refs)
        .unwrap();
    assert_eq!(times.slices, 1);
    assert_same(
        gpu(),
        "split_timed (4,8) length 70001 offset 9",
        &split_with(cpu(), &plan, &key(1), 9, &secret),
        &shares,
    );
}

/// The compact scheme on the GPU (keystream and dispersal on the device,
/// `shaders/compact.wgsl` then the apply pass; docs/DESIGN.md section 8)
/// gives the CPU's shares, and any t of them give the stream back, on the
/// awkward lengths, around a block of t segments, and for the shapes.
fn check_compact(gpu: &GpuBackend, t: usize, n: usize, seg: usize, len: usize) {
    check_compact_at(gpu, t, n, seg, 0, len);
}

/// [`check_compact`] of a stream that starts at byte `offset` of the
/// shared stream (a block boundary).
fn check_compact_at(gpu: &GpuBackend, t: usize, n: usize, seg: usize, offset: u64, len: usize) {
    use umbra::engine::compact::{disperse_stream, undisperse_stream};
    use umbra::share::format::compact_payload_len;
    let plan = plan(t, n);
    let k = key(t as u8 ^ 0x5c);
    let stream = data(len, len as u64 + t as u64);
    let plen = compact_payload_len(len as u64, t, seg as u32) as usize;
    let run = |b: &dyn Backend| {
        let mut shares = vec![vec![0xA5u8; plen]; n];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        disperse_stream(b, &plan, &k, seg, offset, &stream, &mut refs).unwrap();
        shares
    };
    let expected = run(cpu());
    let got = run(gpu);
    assert_same(
        gpu,
        &format!("compact ({t},{n}) length {len} at {offset}"),
        &expected,
        &got,
    );
    // Back from the last t shares on the GPU.
    let xs: Vec<u8> = plan.xs()[n - t..].to_vec();
    let inverse = Matrix::vandermonde_inverse(&xs).unwrap();
    let ins: Vec<&[u8]> = got[n - t..].iter().map(Vec::as_slice).collect();
    let mut back = vec![0u8; len];
    undisperse_stream(gpu, &inverse, &k, seg, offset, &ins, &mut back).unwrap();
    assert!(
        back == stream,
        "compact ({t},{n}) length {len} at {offset}: not rebuilt"
    );
}

#[test]
fn compact_matches_cpu_on_awkward_lengths_and_shapes() {
    for (t, n) in [(2, 2), (4, 8), (8, 16)] {
        let block = t * 4096;
        for len in LENGTHS
            .into_iter()
            .chain([block - 1, block, block + 1, 3 * block + 7])
        {
            check_compact(gpu(), t, n, 4096, len);
        }
    }
    for len in [1, 255, 256, 4096, 255 * 4096 + 1] {
        check_compact(gpu(), 255, 255, 4096, len);
    }
    check_compact(small_gpu(), 4, 8, 4096, (17 << 12) + 5);
    // Stream offsets whose keystream block numbers carry past 2^32 and 2^38.
    for offset in [
        3 * 8 * 4096,
        (1u64 << 38) - 8 * 4096,
        (1u64 << 32) * 64 - 4 * 4096,
    ] {
        check_compact_at(gpu(), 4, 8, 4096, offset, 5 * 4096 * 4 + 77);
    }
}

/// One block at offsets that are not multiples of 64 or 4 (the trait takes
/// any), with stripes of every alignment: the cipher pass then takes each
/// chunk's keystream from two ChaCha20 blocks. GPU equals CPU both ways.
#[test]
fn compact_blocks_at_unaligned_offsets_match_cpu() {
    for (t, n) in [(3, 5), (4, 8)] {
        let plan = plan(t, n);
        let xs: Vec<u8> = plan.xs()[..t].to_vec();
        let inverse = Matrix::vandermonde_inverse(&xs).unwrap();
        for offset in [1u64, 3, 61, 63, 64, 65, (1 << 38) - 5, (1 << 38) + 130] {
            for len in [1usize, 2, 5, 64, 190, 191, 192, 1000, 4097] {
                let k = key(len as u8);
                let block = data(len, offset ^ len as u64);
                let stripe = len.div_ceil(t);
                let run = |b: &dyn Backend| {
                    let mut shares = vec![vec![0xA5u8; stripe]; n];
                    let mut refs: Vec<&mut [u8]> =
                        shares.iter_mut().map(Vec::as_mut_slice).collect();
                    b.disperse(&plan, &k, offset, &block, &mut refs).unwrap();
                    shares
                };
                let case = format!("compact block ({t},{n}) length {len} at {offset}");
                let got = run(gpu());
                assert_same(gpu(), &case, &run(cpu()), &got);
                let ins: Vec<&[u8]> = got[..t].iter().map(Vec::as_slice).collect();
                let mut back = vec![0x5Au8; len];
                gpu()
                    .undisperse(&inverse, &k, offset, &ins, &mut back)
                    .unwrap();
                assert!(back == block, "{case}: not rebuilt on the GPU");
            }
        }
    }
}

/// Many compact objects in one batch (own keys and lengths, zero included,
/// more blocks than one piece table holds) give the payloads each gets
/// alone on the CPU, and one batch combine gives every stream back.
fn check_compact_batches(gpu: &GpuBackend, t: usize, n: usize, seg: usize, lens: &[usize]) {
    use umbra::engine::{DisperseJob, UndisperseJob};
    use umbra::share::format::compact_payload_len;
    let plan = plan(t, n);
    let keys: Vec<ObjectKey> = (0..lens.len()).map(|i| key(i as u8 ^ 0x33)).collect();
    let streams: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| data(l, 7 * i as u64))
        .collect();
    let plen = |l: usize| compact_payload_len(l as u64, t, seg as u32) as usize;
    let mut got: Vec<Vec<Vec<u8>>> = lens
        .iter()
        .map(|&l| vec![vec![0xA5u8; plen(l)]; n])
        .collect();
    {
        let mut jobs: Vec<DisperseJob<'_>> = got
            .iter_mut()
            .enumerate()
            .map(|(i, shares)| DisperseJob {
                key: &keys[i],
                offset: 0,
                stream: &streams[i],
                shares: shares.iter_mut().map(Vec::as_mut_slice).collect(),
            })
            .collect();
        gpu.disperse_batch(&plan, seg, &mut jobs)
            .unwrap_or_else(|e| panic!("{} disperse_batch failed: {e}", gpu.describe()));
    }
    for (i, stream) in streams.iter().enumerate() {
        let mut expected = vec![vec![0u8; plen(stream.len())]; n];
        let mut refs: Vec<&mut [u8]> = expected.iter_mut().map(Vec::as_mut_slice).collect();
        umbra::engine::compact::disperse_stream(cpu(), &plan, &keys[i], seg, 0, stream, &mut refs)
            .unwrap();
        let case = format!(
            "disperse_batch ({t},{n}) object {i} of {}, length {}",
            lens.len(),
            stream.len()
        );
        assert_same(gpu, &case, &expected, &got[i]);
    }
    let pick: Vec<usize> = (0..t).map(|i| n - 1 - i).collect();
    let xs: Vec<u8> = pick.iter().map(|&i| plan.xs()[i]).collect();
    let inverse = Matrix::vandermonde_inverse(&xs).unwrap();
    let mut back: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0x5Au8; l]).collect();
    {
        let mut jobs: Vec<UndisperseJob<'_>> = back
            .iter_mut()
            .enumerate()
            .map(|(i, out)| UndisperseJob {
                key: &keys[i],
                offset: 0,
                shares: pick.iter().map(|&k| got[i][k].as_slice()).collect(),
                stream: out.as_mut_slice(),
            })
            .collect();
        gpu.undisperse_batch(&inverse, seg, &mut jobs)
            .unwrap_or_else(|e| panic!("{} undisperse_batch failed: {e}", gpu.describe()));
    }
    for (i, stream) in streams.iter().enumerate() {
        assert!(
            back[i] == *stream,
            "undisperse_batch ({t},{n}) object {i}, length {}: not rebuilt",
            stream.len()
        );
    }
}

#[test]
fn compact_batches_match_cpu() {
    // Awkward lengths, objects spanning 4 KiB slices and sharing them.
    let lens: Vec<usize> = (0..40)
        .map(|i| LENGTHS[i % LENGTHS.len()] + (i / LENGTHS.len()) * 1500)
        .collect();
    check_compact_batches(small_gpu(), 4, 8, 4096, &lens);
    // More blocks than one slice's piece table holds (1024).
    let lens: Vec<usize> = (0..1500).map(|i| 1 + i % 70).collect();
    check_compact_batches(gpu(), 2, 3, 4096, &lens);
    // A small series: 24 objects of about 50 KB, several blocks each.
    let lens: Vec<usize> = (0..24).map(|i| 50_000 + i * 3).collect();
    check_compact_batches(gpu(), 4, 8, 4096, &lens);
}

/// The 300 MiB object of [`large_object_matches_cpu`] in the compact
/// scheme, (4, 8), its default segment size: split on the GPU equals the
/// CPU, and 4 shares give it back on the GPU.
#[test]
#[ignore = "300 MiB: minutes in debug on llvmpipe; run by scripts/test.sh and scripts/gpu-check.sh in release"]
fn large_compact_object_matches_cpu() {
    let t = 4;
    let seg = umbra::share::format::compact_segment_size(t) as usize;
    check_compact(gpu(), t, 8, seg, (300 << 20) + 3);
}
