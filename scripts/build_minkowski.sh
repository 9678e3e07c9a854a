#!/usr/bin/env bash
# Optional: build MinkowskiEngine 0.5.4 from PyPI's sdist and install it into the project venv.
#
# ME's binary is tied to the exact torch version, so the built wheel is cached outside the repo under
# ~/.cache/sr3d/wheels/me-0.5.4-torch<version>[-cuda]/ and reused on the next run.
# CPU-only unless nvcc exists AND the venv's torch is a CUDA build (CUDA 12 builds may still need
# upstream patches: NVIDIA/MinkowskiEngine issues 543, 594, 601, 638).
#
# Usage: bash scripts/build_minkowski.sh            (takes ~7 min on 2 cores the first time)
# Env:   VENV (default <repo>/.venv), MAX_JOBS (default 2), SR3D_WHEEL_CACHE (default ~/.cache/sr3d/wheels)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
MAX_JOBS="${MAX_JOBS:-2}"
ME_VERSION="0.5.4"

[ -x "$PY" ] || { echo "build_minkowski: no python at $PY (set VENV)" >&2; exit 1; }

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"
TORCH_CUDA="$("$PY" -c 'import torch; print(torch.version.cuda or "")')"
MODE=cpu
if command -v nvcc >/dev/null 2>&1 && [ -n "$TORCH_CUDA" ]; then
    MODE=cuda
fi
CACHE_ROOT="${SR3D_WHEEL_CACHE:-$HOME/.cache/sr3d/wheels}"
CACHE="$CACHE_ROOT/me-$ME_VERSION-torch${TORCH_VERSION//+/_}-$MODE"
echo "build_minkowski: torch $TORCH_VERSION (cuda: ${TORCH_CUDA:-none}), mode $MODE, cache $CACHE"

install_wheel() {
    # --no-deps: ME's metadata would otherwise pull an unpinned torch.
    "$PY" -m pip install --no-deps --force-reinstall "$1"
    # Import check from outside the repo so that nothing local shadows the package.
    (cd / && "$PY" -c 'import MinkowskiEngine as ME; print("MinkowskiEngine", ME.__version__, "imported")')
}

shopt -s nullglob
# pip may lower-case the distribution name in the wheel file name.
shopt -s nocaseglob
cached=("$CACHE"/minkowskiengine-*.whl)
if [ ${#cached[@]} -gt 0 ]; then
    echo "build_minkowski: using cached wheel ${cached[0]}"
    install_wheel "${cached[0]}"
    exit 0
fi

# ME links a BLAS; the CPU build uses OpenBLAS headers and library.
if ! ldconfig -p | grep -q libopenblas; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas-dev
    else
        sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopenblas-dev
    fi
fi

WORK="$(mktemp -d /tmp/sr3d_me_build.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# Build-time needs of ME's setup.py; no build isolation, because it must compile against the venv's torch.
"$PY" -m pip install -q setuptools wheel ninja
SETUPTOOLS_USE_DISTUTILS=stdlib "$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation \
    "MinkowskiEngine==$ME_VERSION" -d "$WORK"
tar xzf MinkowskiEngine-"$ME_VERSION".tar.gz
cd MinkowskiEngine-"$ME_VERSION"

# Python >= 3.10 removed the ABC aliases from `collections`.
for f in MinkowskiEngine/MinkowskiCommon.py MinkowskiEngine/MinkowskiCoordinateManager.py \
         MinkowskiEngine/MinkowskiKernelGenerator.py MinkowskiEngine/MinkowskiTensorField.py \
         MinkowskiEngine/utils/quantization.py; do
    # Only Sequence moves: `from collections import Sequence, namedtuple` must keep namedtuple in collections.
    sed -i -E 's/^from collections import Sequence, namedtuple$/from collections import namedtuple\nfrom collections.abc import Sequence/; s/^from collections import Sequence$/from collections.abc import Sequence/' "$f"
done
grep -qE "^from collections(\.abc)? import .*Sequence.*namedtuple|^from collections import .*Sequence" \
    MinkowskiEngine/*.py MinkowskiEngine/utils/*.py \
    && { echo "build_minkowski: the collections.abc fix did not apply cleanly" >&2; exit 1; }

BUILD_OPTS=(--config-settings=--build-option=--blas=openblas)
if [ "$MODE" = cpu ]; then
    BUILD_OPTS+=(--config-settings=--build-option=--cpu_only)
fi
MAX_JOBS="$MAX_JOBS" SETUPTOOLS_USE_DISTUTILS=stdlib "$PY" -m pip wheel . --no-build-isolation --no-deps \
    -w dist "${BUILD_OPTS[@]}"

mkdir -p "$CACHE"
built=(dist/minkowskiengine-*.whl)
[ ${#built[@]} -gt 0 ] || { echo "build_minkowski: no wheel in $PWD/dist" >&2; exit 1; }
cp "${built[@]}" "$CACHE"/
built=("$CACHE"/minkowskiengine-*.whl)
echo "build_minkowski: cached ${built[0]}"
install_wheel "${built[0]}"
