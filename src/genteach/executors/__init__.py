"""Ways to run a generation beyond one process.

:func:`run_on_ray` shards the seeds over a Ray cluster (``genteach generate --executor
ray``). Importing this package never imports Ray; running it needs
``pip install 'genteach[ray]'``.
"""

from __future__ import annotations

from genteach.executors.ray import (
    RunSpec,
    ShardedRunSummary,
    ShardWorker,
    run_on_ray,
    shard_dir,
    shard_of,
)

__all__ = ["RunSpec", "ShardWorker", "ShardedRunSummary", "run_on_ray", "shard_dir", "shard_of"]
