"""Training runtime: distributed helpers (runner, hooks and schedules arrive with training)."""

from detforge.engine.dist import get_dist_info, sync_random_seed

__all__ = ["get_dist_info", "sync_random_seed"]
