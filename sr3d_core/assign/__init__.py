"""sr3d_core.assign."""
