"""sr3d_core.model."""
