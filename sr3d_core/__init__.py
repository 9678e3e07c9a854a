"""SR3D core: a ROS-free sparse 3D indoor object detector (TR3D baseline + SR3D training)."""

__version__ = "0.1.0"
