"""Measuring retrieval: recall@k over a labelled set of questions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

__all__ = ["recall_at_k"]


def recall_at_k(search: Callable[[str, int], Sequence[str]],
                cases: Iterable[tuple[str, str]], ks: Sequence[int] = (1, 5),
                ) -> dict[str, float]:
    """Share of questions whose expected id is among the first ``k`` ids ``search(question,
    max(ks))`` returns, for each ``k``: ``{"recall@1": 0.8, "recall@5": 0.95}``."""
    cases = list(cases)
    if not cases:
        raise ValueError("recall_at_k needs at least one (question, expected id) case")
    top = max(ks)
    found = {k: 0 for k in ks}
    for question, expected in cases:
        ids = list(search(question, top))
        for k in ks:
            found[k] += expected in ids[:k]
    return {f"recall@{k}": found[k] / len(cases) for k in ks}
