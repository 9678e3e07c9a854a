"""sr3d_ros: the thin ROS 2 layer over sr3d_core."""
