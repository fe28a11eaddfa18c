"""GPU isolation controls (GPU-*)."""
