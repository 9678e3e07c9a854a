"""sr3d_core.data."""
