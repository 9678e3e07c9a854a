# shellcheck shell=bash
# Environment for running SR3D (tests, node, tools) after scripts/setup.sh.
# Usage: source scripts/env.sh   (bash; the Makefile sources it for every target)
#
# Sets: VIRTUAL_ENV, PATH (venv first), AMENT_PREFIX_PATH (venv prefix: ament_index look-ups
# and colcon), FASTDDS_DEFAULT_PROFILES_FILE (config/fastdds_large_messages.xml: room for camera-size
# clouds) unless already set, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST unless already set (ROS_LOCALHOST_ONLY=1
# on Humble, which predates the former). With a system ROS 2 under /opt/ros it sources that
# first, and adds the venv prefix where setup.sh installed missing interface packages.

_sr3d_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SR3D_VENV="${SR3D_VENV:-$_sr3d_repo/.venv}"

source "$_sr3d_repo/scripts/ros_detect.sh"
_sr3d_ros_setup="$(sr3d_find_ros_setup)"

# Prepends $2 to the colon-separated variable named $1 unless it is already in it.
_sr3d_prepend() {
    case ":${!1:-}:" in
        *":$2:"*) ;;
        *) export "$1=$2${!1:+:${!1}}" ;;
    esac
}

if [[ -n "$_sr3d_ros_setup" ]]; then
    # setup.bash reads unset variables: never let a caller's `set -u` break on it.
    case $- in *u*) _sr3d_had_u=1; set +u ;; *) _sr3d_had_u=0 ;; esac
    # shellcheck disable=SC1090
    source "$_sr3d_ros_setup"
    [[ $_sr3d_had_u == 1 ]] && set -u
    # Interface packages that setup.sh built into the venv prefix are not on the system paths.
    _sr3d_prepend CMAKE_PREFIX_PATH "$SR3D_VENV"
    _sr3d_prepend LD_LIBRARY_PATH "$SR3D_VENV/lib"
    for _sr3d_sp in "$SR3D_VENV"/local/lib/python3*/dist-packages "$SR3D_VENV"/lib/python3*/site-packages; do
        [[ -d "$_sr3d_sp" ]] && _sr3d_prepend PYTHONPATH "$_sr3d_sp"
    done
    if [[ "${ROS_DISTRO:-}" == "humble" ]]; then
        export ROS_LOCALHOST_ONLY="${ROS_LOCALHOST_ONLY:-1}"
    fi
fi

_sr3d_prepend AMENT_PREFIX_PATH "$SR3D_VENV"
_sr3d_prepend PATH "$SR3D_VENV/bin"
export VIRTUAL_ENV="$SR3D_VENV"
# Large RGB-D clouds need a larger Fast DDS shared-memory segment than the default 512 kB (see the profile's
# comment); a profile the caller chose wins.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_sr3d_repo/config/fastdds_large_messages.xml}"
if [[ "${ROS_DISTRO:-}" == "humble" ]]; then  # Fast DDS 2.6 reads only the older name (newer ones warn on it)
    export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$FASTDDS_DEFAULT_PROFILES_FILE}"
fi
# Keep DDS discovery on loopback unless the caller chose otherwise (robots may want SUBNET).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"

unset _sr3d_repo _sr3d_ros_setup _sr3d_d _sr3d_sp _sr3d_had_u
unset -f sr3d_find_ros_setup
unset -f _sr3d_prepend
