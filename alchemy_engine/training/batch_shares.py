"""A rank's share of a global pass (several processes, see ``data_parallel.py``).

Every rank builds the same global batch plan; :func:`rank_share` keeps this rank's contiguous rows
of one pass and says which rows they are, so ``loop.forward_loss`` draws noise and timesteps for
the whole pass and keeps its own.
"""

from __future__ import annotations

_ROW_KEYS = ("latents", "embeds", "pooled", "rows", "time_ids", "scale", "weights")


def rank_share(batch: dict, rank: int, size: int) -> dict:
    """This rank's contiguous rows of a global pass, with ``share = (global count, rows)``.

    Rows are split in chunks of ``ceil(count / size)``; an empty share is row 0 with weight 0."""
    count = batch["latents"].shape[0]
    chunk = -(-count // size)
    start, stop = min(rank * chunk, count), min((rank + 1) * chunk, count)
    empty = start == stop
    rows = slice(0, 1) if empty else slice(start, stop)
    out = {key: None if batch.get(key) is None else batch[key][rows] for key in _ROW_KEYS}
    kept = stop - start
    # the rank's mean × kept × size / count = size × Σ(its samples) / count; DDP divides by size
    out["scale"] = batch["scale"][rows] * (0.0 if empty else kept * size / count)
    out["share"] = (count, rows)
    return out
