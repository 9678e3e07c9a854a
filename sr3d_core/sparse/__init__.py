"""sr3d_core.sparse."""
