"""Managed values: state keys whose value graphflow computes for each step, as LangGraph's
``RemainingSteps`` and ``IsLastStep``. Declare one in the state and read it like any key::

    class State(TypedDict):
        count: int
        remaining_steps: RemainingSteps

    def route(state: State):
        return END if state["remaining_steps"] <= 2 else "work"

Nodes and routers read them; nothing writes them, they are never stored, and runs do not
return them. ``remaining_steps`` counts the supersteps the run may still take, this one
included (see ``recursion_limit``); ``is_last_step`` is True in the last of them.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, get_args, get_origin

__all__ = ["IsLastStep", "ManagedValue", "RemainingSteps", "managed_kind"]


class ManagedValue:
    """The marker of a managed key (the metadata of ``RemainingSteps`` / ``IsLastStep``)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"ManagedValue({self.kind!r})"


REMAINING_STEPS = ManagedValue("remaining_steps")
IS_LAST_STEP = ManagedValue("is_last_step")

RemainingSteps = Annotated[int, REMAINING_STEPS]
"""A state key holding how many supersteps the run may still take, this one included."""

IsLastStep = Annotated[bool, IS_LAST_STEP]
"""A state key that is True in the last superstep the recursion limit allows."""


def managed_kind(annotation: Any) -> str | None:
    """``"remaining_steps"`` / ``"is_last_step"`` for a managed key's annotation, else None."""
    if get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, ManagedValue):
                return meta.kind
        return managed_kind(get_args(annotation)[0])
    return None


def managed_values(kinds: dict[str, str], remaining: int) -> dict[str, Any]:
    """The values of the managed keys ``kinds`` (key -> kind) with ``remaining`` steps left."""
    return {key: remaining if kind == "remaining_steps" else remaining <= 1
            for key, kind in kinds.items()}
