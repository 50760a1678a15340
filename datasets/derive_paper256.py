#!/usr/bin/env python3
"""Derive the six 256x256 8-bit grayscale PNGs in datasets/paper256/ from the
DICOM files in datasets/dicom/.

The output is deterministic: with the pinned versions in requirements.txt,
running this script reproduces the committed PNGs byte for byte
(`python3 derive_paper256.py --check` verifies that without writing).

Pipeline, identical for every image (see README.md, "The 256x256 set"):

 1. Read the file with pydicom and take `pixel_array` (native, uncompressed
    files only: no decoder plugin is needed).
 2. Multi-frame: keep frame 0 (index 0 of the frame axis).
 3. RGB (SamplesPerPixel 3): convert to luminance with the ITU-R BT.601 luma
    weights Y = 0.299 R + 0.587 G + 0.114 B, in float64.
 4. Modality LUT: value * RescaleSlope + RescaleIntercept, taken from the top
    level, else from (0028,9145) Pixel Value Transformation Sequence in the
    per-frame (frame 0) or shared functional groups (enhanced objects).
    Absent -> slope 1, intercept 0.
 5. VOI window: the first Window Center / Window Width pair, taken from the top
    level, else from (0028,9132) Frame VOI LUT Sequence in the per-frame
    (frame 0) or shared functional groups.  It is applied with the LINEAR
    function of DICOM PS3.3 C.11.2.1.2.1:
        y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1]
    If the file has no window, the window is [p0.5, p99.5], the 0.5th and
    99.5th percentiles (numpy's default linear interpolation) of the
    rescaled image: y = (x - p0.5) / (p99.5 - p0.5), clipped to [0, 1].
 6. MONOCHROME1: invert, y = 1 - y (so that high attenuation is white, as
    for MONOCHROME2).
 7. Centre-crop to a square of side min(rows, cols); the offset is
    (size - side) // 2 on each axis.
 8. Resize to 256x256 with Pillow's LANCZOS filter on the float image
    (mode "F", values y * 255), then round half to even (numpy.rint),
    clip to [0, 255] and store as uint8.
 9. Write an 8-bit grayscale ("L") PNG, compress_level 9, no metadata chunks.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

HERE = Path(__file__).resolve().parent
SIZE = 256

# (output name, source file in dicom/, paper image it stands in for)
IMAGES = [
    ("ultrasound_US1.png", "US1_UNCR.dcm", "ultrasound"),
    ("xray_chest_cr_RG1.png", "RG1_UNCR.dcm", "x-ray"),
    ("ct_small.png", "CT_small.dcm", "CT scan"),
    ("ct_head_perfusion_eCT.png", "eCT_Supplemental.dcm", "head"),
    ("mr_shoulder_MR2.png", "MR2_UNCR.dcm", "mammogram (none available)"),
    ("mr_small.png", "MR_small.dcm", "spine (none available)"),
]


def _from_groups(ds: pydicom.Dataset, seq_kw: str):
    """Return the first item of `seq_kw` found in the frame-0 per-frame
    functional group, else in the shared functional group, else None."""
    for groups_kw in ("PerFrameFunctionalGroupsSequence",
                      "SharedFunctionalGroupsSequence"):
        groups = ds.get(groups_kw)
        if groups:
            seq = groups[0].get(seq_kw)
            if seq:
                return seq[0]
    return None


def _first(value) -> float:
    """First value of a possibly multi-valued DS element, as float."""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0]
    return float(value)


def rescale_params(ds: pydicom.Dataset) -> tuple[float, float]:
    src = ds if "RescaleSlope" in ds or "RescaleIntercept" in ds else \
        _from_groups(ds, "PixelValueTransformationSequence")
    if src is None:
        return 1.0, 0.0
    return float(src.get("RescaleSlope", 1.0)), float(src.get("RescaleIntercept", 0.0))


def window_params(ds: pydicom.Dataset):
    src = ds if "WindowCenter" in ds and "WindowWidth" in ds else \
        _from_groups(ds, "FrameVOILUTSequence")
    if src is None or "WindowCenter" not in src or "WindowWidth" not in src:
        return None
    return _first(src.WindowCenter), _first(src.WindowWidth)


def to_unit(ds: pydicom.Dataset) -> tuple[np.ndarray, str]:
    """Steps 1-6: pixel data -> float64 image in [0, 1]; also returns a short
    description of the windowing used."""
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[0]
    arr = arr.astype(np.float64)
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        if ds.PhotometricInterpretation != "RGB":
            raise ValueError(f"unsupported colour model {ds.PhotometricInterpretation}")
        # Element-wise multiply and add (no BLAS dot product), so that the
        # rounding is the same on every machine.
        arr = 0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]
    slope, intercept = rescale_params(ds)
    arr = arr * slope + intercept
    win = window_params(ds)
    if win is not None:
        c, w = win
        y = (arr - (c - 0.5)) / (w - 1.0) + 0.5
        how = f"VOI window C={c:g} W={w:g}"
    else:
        lo, hi = np.percentile(arr, [0.5, 99.5])
        y = (arr - lo) / (hi - lo)
        how = f"percentiles p0.5={lo:g} p99.5={hi:g}"
    if slope != 1.0 or intercept != 0.0:
        how += f", rescale {slope:g}x{intercept:+g}"
    y = np.clip(y, 0.0, 1.0)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        y = 1.0 - y
        how += ", MONOCHROME1 inverted"
    return y, how


def to_png_bytes(unit: np.ndarray) -> bytes:
    """Steps 7-9."""
    rows, cols = unit.shape
    side = min(rows, cols)
    r0, c0 = (rows - side) // 2, (cols - side) // 2
    sq = np.ascontiguousarray(unit[r0:r0 + side, c0:c0 + side] * 255.0, dtype=np.float32)
    img = Image.fromarray(sq) if side != SIZE else None
    if img is not None:
        img = img.resize((SIZE, SIZE), resample=Image.Resampling.LANCZOS)
        out = np.asarray(img, dtype=np.float64)
    else:
        out = sq.astype(np.float64)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG", compress_level=9, optimize=False)
    return buf.getvalue()


def derive(src: Path) -> tuple[bytes, str]:
    ds = pydicom.dcmread(src)
    unit, how = to_unit(ds)
    return to_png_bytes(unit), how


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dicom-dir", type=Path, default=HERE / "dicom")
    ap.add_argument("--out-dir", type=Path, default=HERE / "paper256")
    ap.add_argument("--check", action="store_true",
                    help="regenerate in memory and compare with the files in --out-dir; write nothing")
    args = ap.parse_args()

    if not args.check:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    bad = 0
    for name, src, role in IMAGES:
        data, how = derive(args.dicom_dir / src)
        digest = hashlib.sha256(data).hexdigest()
        dest = args.out_dir / name
        if args.check:
            ok = dest.is_file() and dest.read_bytes() == data
            bad += not ok
            status = "OK" if ok else "DIFFERS"
            print(f"{status:8} {name:28} <- {src} ({how})")
        else:
            dest.write_bytes(data)
            print(f"{digest}  {name:28} <- {src} [{role}] ({how})")
    if args.check and bad:
        print(f"{bad} image(s) differ", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
