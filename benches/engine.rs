//! Criterion groups per operation, in GB/s of secret (Throughput::Bytes):
//! the keystream alone, the kernel alone per SIMD level, and split (4,8) /
//! combine t = 4 and the compact scheme's block through the CPU backend. `umbra bench` covers the issue's
//! image sizes; these are for profiling one piece at a time.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use umbra::buffer::AlignedBuf;
use umbra::engine::{Backend, CpuBackend};
use umbra::kernel::{Kernel, Level};
use umbra::keystream::{self, ObjectKey};
use umbra::sharing::{Matrix, SplitPlan, Threshold, combine_matrix, default_xs};
use umbra::tools::synthetic;

const BIG: usize = 8 << 20;

fn keystream_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("keystream");
    let key = ObjectKey::from_bytes([1; 32]);
    for len in [4096usize, 1 << 20] {
        let mut buf = vec![0u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("fill", len), &len, |b, _| {
            b.iter(|| keystream::fill(&key, 1, 0, &mut buf))
        });
    }
    g.finish();
}

fn kernel_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernel (8x4, 4 KiB, one core)");
    let len = 4096;
    let inputs: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8 * 37 + 1; len]).collect();
    let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    let mut outputs = vec![vec![0u8; len]; 8];
    let matrix = Matrix::vandermonde(&default_xs(8), 4);
    g.throughput(Throughput::Bytes(len as u64));
    for level in Level::available() {
        let kernel = Kernel::new(level, matrix.clone()).expect("available");
        g.bench_function(level.name(), |b| {
            b.iter(|| {
                let mut refs: Vec<&mut [u8]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
                kernel.apply(&input_refs, &mut refs);
            })
        });
    }
    g.finish();
}

fn split_combine_group(c: &mut Criterion) {
    let data = synthetic::ct_volume(2048, 2048, 1);
    assert_eq!(data.len(), BIG);
    let plan = SplitPlan::new(Threshold::new(4, 8).unwrap(), default_xs(8)).unwrap();
    let key = ObjectKey::from_bytes([2; 32]);
    // Aligned, as umbra allocates them, so the streaming-store path runs.
    let mut shares: Vec<AlignedBuf> = (0..8).map(|_| AlignedBuf::zeroed(BIG)).collect();
    let mut out = AlignedBuf::zeroed(BIG);
    let matrix = combine_matrix(&[1, 2, 3, 4]).unwrap();

    let mut g = c.benchmark_group("split (4,8) 8 MiB");
    g.throughput(Throughput::Bytes(BIG as u64));
    g.sample_size(20);
    for level in Level::available() {
        let backend = CpuBackend::new(level).unwrap();
        g.bench_function(level.name(), |b| {
            b.iter(|| {
                let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(|s| &mut s[..]).collect();
                backend.split(&plan, &key, 0, &data, &mut refs).unwrap();
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("combine (t=4) 8 MiB");
    g.throughput(Throughput::Bytes(BIG as u64));
    g.sample_size(20);
    for level in Level::available() {
        let backend = CpuBackend::new(level).unwrap();
        let inputs: Vec<&[u8]> = shares[..4].iter().map(|s| &s[..]).collect();
        g.bench_function(level.name(), |b| {
            b.iter(|| backend.apply(&matrix, &inputs, &mut [&mut out]).unwrap())
        });
    }
    g.finish();
}

/// The compact scheme (docs/DESIGN.md section 8): one 4 MiB block of
/// (4, 8) (t segments of 1 MiB) dispersed and rebuilt, per SIMD level.
fn compact_group(c: &mut Criterion) {
    let (t, n, seg) = (4usize, 8usize, 1usize << 20);
    let block = synthetic::ct_volume(2048, 1024, 1);
    assert_eq!(block.len(), t * seg);
    let plan = SplitPlan::new(Threshold::new(t, n).unwrap(), default_xs(n)).unwrap();
    let key = ObjectKey::from_bytes([3; 32]);
    let mut shares: Vec<AlignedBuf> = (0..n).map(|_| AlignedBuf::zeroed(seg)).collect();
    let mut back = AlignedBuf::zeroed(t * seg);
    let inverse = Matrix::vandermonde_inverse(&default_xs(t)).unwrap();

    let mut g = c.benchmark_group("split compact (4,8) 4 MiB block");
    g.throughput(Throughput::Bytes(block.len() as u64));
    g.sample_size(20);
    for level in Level::available() {
        let backend = CpuBackend::new(level).unwrap();
        g.bench_function(level.name(), |b| {
            b.iter(|| {
                let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(|s| &mut s[..]).collect();
                backend.disperse(&plan, &key, 0, &block, &mut refs).unwrap();
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("combine compact (t=4) 4 MiB block");
    g.throughput(Throughput::Bytes(block.len() as u64));
    g.sample_size(20);
    for level in Level::available() {
        let backend = CpuBackend::new(level).unwrap();
        let inputs: Vec<&[u8]> = shares[..t].iter().map(|s| &s[..]).collect();
        g.bench_function(level.name(), |b| {
            b.iter(|| {
                backend
                    .undisperse(&inverse, &key, 0, &inputs, &mut back)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    keystream_group,
    kernel_group,
    split_combine_group,
    compact_group
);
criterion_main!(benches);
