#!/usr/bin/env bash
# Check the committed sample corpus against SHA256SUMS.
#
#   bash datasets/verify.sh        (from anywhere)
#
# Exits non-zero if any file listed in SHA256SUMS is missing or differs, or if
# a file under dicom/, encodings/, malformed/ or paper256/ is not listed in SHA256SUMS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if command -v sha256sum >/dev/null 2>&1; then
    sha256sum --check --strict --quiet SHA256SUMS
elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 --check --strict --quiet SHA256SUMS
else
    echo "verify.sh: neither sha256sum nor shasum found" >&2
    exit 2
fi

# Every data file must be listed (no unaccounted-for files).
listed=$(sed -E 's/^[0-9a-f]{64}  \*?//' SHA256SUMS | LC_ALL=C sort)
present=$(find dicom encodings malformed paper256 -type f | LC_ALL=C sort)
unlisted=$(LC_ALL=C comm -13 <(printf '%s\n' "$listed") <(printf '%s\n' "$present"))
if [ -n "$unlisted" ]; then
    echo "verify.sh: files not listed in SHA256SUMS:" >&2
    printf '  %s\n' $unlisted >&2
    exit 1
fi

echo "verify.sh: $(wc -l < SHA256SUMS) files OK"
