# Sourced by setup.sh and env.sh: the one place that decides which system ROS 2 to use.
# Prints the path of /opt/ros/<distro>/setup.bash, or nothing when there is none (or SR3D_NO_SYSTEM_ROS=1).
# SR3D_ROS_DISTRO picks a distro; otherwise the first of kilted, jazzy, humble, rolling that is installed.
sr3d_find_ros_setup() {
    [[ "${SR3D_NO_SYSTEM_ROS:-0}" == "1" ]] && return 0
    local d
    for d in ${SR3D_ROS_DISTRO:-kilted jazzy humble rolling}; do
        if [[ -f "/opt/ros/$d/setup.bash" ]]; then
            echo "/opt/ros/$d/setup.bash"
            return 0
        fi
    done
}
