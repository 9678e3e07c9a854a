"""sr3d_core.losses."""
