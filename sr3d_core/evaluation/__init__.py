"""sr3d_core.evaluation."""
