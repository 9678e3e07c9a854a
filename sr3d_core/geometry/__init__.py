"""sr3d_core.geometry."""
