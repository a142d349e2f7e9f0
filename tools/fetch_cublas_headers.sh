#!/usr/bin/env bash
# Fetches cuBLASLt's headers (cublasLt.h, cublas_api.h, ...) from the `nvidia-cublas` wheel into DEST/include, for
# building the CUDA backend on a machine whose CUDA toolkit has no cuBLAS (e.g. CI: nvcc and the runtime only).
# Only the headers are kept; the library is loaded at run time (cuda/gemm.h says where it is looked for).
#
#   tools/fetch_cublas_headers.sh DEST [VERSION]      VERSION defaults to 13.1.1.3 (CUDA 13)
#
# Uses `pip download` from the configured package index (pip.conf / PIP_INDEX_URL); the wheel (~420 MB) is deleted
# after extraction. Idempotent: does nothing when DEST/include/cublasLt.h exists. Called by cmake/cublas_headers.cmake
# and .ci/run.
set -euo pipefail
dest=${1:?usage: fetch_cublas_headers.sh DEST [VERSION]}
version=${2:-13.1.1.3}
if [ -f "$dest/include/cublasLt.h" ]; then exit 0; fi
python=$(command -v python3 || command -v python)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch_cublas_headers: pip download nvidia-cublas==$version (headers only are kept)" >&2
"$python" -m pip download --no-deps --only-binary=:all: --dest "$tmp" "nvidia-cublas==$version" >&2
wheel=$(ls "$tmp"/nvidia_cublas-*.whl | head -n1)
mkdir -p "$dest/include"
"$python" - "$wheel" "$dest/include" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("nvidia/") and "/include/" in n and n.endswith(".h")]
    if not any(n.endswith("/cublasLt.h") for n in names):
        sys.exit("fetch_cublas_headers: %s has no cublasLt.h" % wheel)
    for n in names:
        with open(os.path.join(out, os.path.basename(n)), "wb") as f:
            f.write(z.read(n))
PY
echo "fetch_cublas_headers: headers in $dest/include" >&2
