"""How files are split between worker processes (no imports: the parse-floor benchmark uses it
too, so that both are timed with the same pool shape)."""

from __future__ import annotations


def balanced_chunks(items: list, jobs: int, size) -> list:
    """Split work for a pool of `jobs` processes that take chunks as they become free: largest
    items first, in chunks that shrink towards the end, so that no worker is left with a long
    last chunk while the others idle (the processes' finishing times differ by about one small
    chunk). Each chunk holds about 1/(4 * jobs) of what is left when it is cut, and never less
    than 1/(64 * jobs) of the total."""
    order = sorted(items, key=size, reverse=True)
    total = sum(size(t) for t in order) or 1
    left = total
    floor = total / (64 * jobs)
    chunks, chunk, acc = [], [], 0
    target = max(left / (4 * jobs), floor)
    for t in order:
        chunk.append(t)
        acc += size(t)
        if acc >= target:
            chunks.append(chunk)
            left -= acc
            chunk, acc = [], 0
            target = max(left / (4 * jobs), floor)
    if chunk:
        chunks.append(chunk)
    return chunks
