"""LangGraph's call spellings, translated once per call into graphflow's own (DESIGN.md §10).

graphflow configures a run with keywords: ``invoke(x, thread="t1", checkpoint=...,
recursion_limit=..., context=...)`` and ``stream(x, mode=...)``. LangGraph passes a config dict
(positionally or as ``config=``) and names some keywords differently (``stream_mode=``). This
module is the one place where those spellings become graphflow's: :func:`call_options` merges
the graph's ``with_config`` defaults, the config dict and the keywords into one
:class:`CallOptions`, refusing values that disagree. It runs once per call, never per step.

The mapping (``docs/from-langgraph.md``):

==========================================  ==============================================
LangGraph                                   graphflow
==========================================  ==============================================
``config["configurable"]["thread_id"]``     ``thread=`` (an int or a UUID becomes its str)
``config["configurable"]["checkpoint_id"]``  ``checkpoint=`` (replay or fork from there)
``config["configurable"]["checkpoint_ns"]``  ``""`` only (the thread's own graph)
``config["recursion_limit"]``               ``recursion_limit=``
other ``configurable`` keys, ``tags``,      kept: nodes read them from a ``config``
``metadata``, ``run_name``, ...              parameter (``RunnableConfig``), or ``ctx.config``
``stream_mode=``                            ``mode=``
==========================================  ==============================================
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ..errors import GraphflowError
from .ids import check_thread_id

__all__ = ["CONFIG_KEYS", "DURABILITY", "CallOptions", "RunnableConfig", "call_options",
           "checkpoint_config", "coerce_context", "merge_configs", "thread_of"]


class RunnableConfig(TypedDict, total=False):
    """LangGraph's (LangChain's) config dict, as graphflow reads it.

    ``configurable`` holds ``thread_id``, ``checkpoint_id``, ``checkpoint_ns`` and any values of
    the caller's own; ``recursion_limit`` bounds the run. The other keys are carried along for
    nodes to read. A node receives the run's config by declaring ``config: RunnableConfig``.
    """

    configurable: dict[str, Any]
    recursion_limit: int
    tags: list[str]
    metadata: dict[str, Any]
    run_name: str
    run_id: Any
    callbacks: Any
    max_concurrency: int | None


RunnableConfig.__graphflow_inject__ = "config"  # type: ignore[attr-defined]  # (graph/inject.py)
CONFIG_KEYS = frozenset(k for k in RunnableConfig.__annotations__ if not k.startswith("__"))
_SPECIAL = ("thread_id", "checkpoint_id", "checkpoint_ns")
DURABILITY = ("sync", "async", "exit")


@dataclass(slots=True)
class CallOptions:
    """What one call asks for, in graphflow's terms."""

    thread: str | None = None
    checkpoint: str | None = None
    recursion_limit: int | None = None
    modes: Any = None  # a mode, a list of modes, or None
    config: dict[str, Any] | None = None  # the config nodes read (None: nothing was given)


def merge_configs(base: Mapping[str, Any] | None, more: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    """``more`` over ``base``; ``configurable``, ``metadata`` merge key by key, ``tags`` add up."""
    out = dict(base or {})
    for key, value in (more or {}).items():
        if key in ("configurable", "metadata") and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **(value or {})}
        elif key == "tags" and out.get("tags"):
            out[key] = [*out["tags"], *(value or ())]
        else:
            out[key] = value
    return out


def _check_config(config: Any, where: str) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise TypeError(f"{where}: config must be a dict like {{'configurable': "
                        f"{{'thread_id': '1'}}}}, got {type(config).__name__} {config!r:.60}")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise TypeError(f"{where}: unknown config key(s) {unknown}; a config holds "
                        f"{', '.join(sorted(CONFIG_KEYS))}")
    configurable = config.get("configurable")
    if configurable is not None and not isinstance(configurable, Mapping):
        raise TypeError(f"{where}: config['configurable'] must be a dict, got "
                        f"{type(configurable).__name__}")
    return dict(config)


def thread_of(value: Any) -> str:
    """A ``thread_id`` from a config as a graphflow thread id: an int (not a bool) or a UUID
    becomes its ``str`` (LangGraph stores them so too); the result is checked like
    ``thread=``."""
    uuid = sys.modules.get("uuid")  # a UUID given means the module is loaded
    if (isinstance(value, int) and not isinstance(value, bool)) or (
            uuid is not None and isinstance(value, uuid.UUID)):
        value = str(value)
    return check_thread_id(value)


def _agree(name: str, keyword: Any, configured: Any, key: str) -> Any:
    if keyword is None:
        return configured
    if configured is not None and configured != keyword:
        raise GraphflowError(
            f"{name}={keyword!r} and the config's {key}={configured!r} disagree; give one of "
            f"them (or the same value in both)")
    return keyword


def call_options(defaults: Mapping[str, Any] | None, config: Any, *, where: str,
                 thread: str | None = None, checkpoint: str | None = None,
                 recursion_limit: int | None = None, mode: Any = None,
                 stream_mode: Any = None) -> CallOptions:
    """One call's options from the graph's ``with_config`` ``defaults``, the LangGraph
    ``config`` dict and graphflow's keywords; values given twice must agree."""
    if config is None and not defaults:  # graphflow's own spelling: nothing to translate
        if stream_mode is not None:
            mode = _agree("mode", mode, stream_mode, "stream_mode")
        return CallOptions(thread, checkpoint, recursion_limit, mode)
    merged = merge_configs(defaults, _check_config(config, where) if config is not None else None)
    configurable = dict(merged.get("configurable") or {})
    ns = configurable.get("checkpoint_ns") or ""
    if ns:
        raise GraphflowError(
            f"{where}: checkpoint_ns={ns!r} names a subgraph's run inside a thread; graphflow "
            f"runs and edits a thread through its top-level graph (leave checkpoint_ns empty)")
    given = configurable.get("thread_id")
    thread = _agree("thread", thread, None if given is None else thread_of(given),
                    "configurable.thread_id")
    checkpoint = _agree("checkpoint", checkpoint, configurable.get("checkpoint_id"),
                        "configurable.checkpoint_id")
    recursion_limit = _agree("recursion_limit", recursion_limit, merged.get("recursion_limit"),
                             "recursion_limit")
    if stream_mode is not None:
        mode = _agree("mode", mode, stream_mode, "stream_mode")
    for key in _SPECIAL:
        configurable.pop(key, None)
    merged["configurable"] = configurable
    return CallOptions(thread, checkpoint, recursion_limit, mode, merged)


def checkpoint_config(thread: str, checkpoint_id: str | None, ns: str = "") -> dict[str, Any]:
    """The LangGraph-style config that points at a checkpoint of a thread."""
    configurable: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def coerce_context(schema: Any, context: Mapping[str, Any]) -> Any:
    """A ``context=`` dict as an instance of the graph's ``context_schema`` (a dataclass, a
    pydantic model or any class taking keywords; a TypedDict keeps the dict)."""
    from ..graph.typecheck import is_typeddict

    if is_typeddict(schema):
        return dict(context)
    try:
        validate = getattr(schema, "model_validate", None)
        return validate(context) if validate is not None else schema(**context)
    except Exception as exc:
        raise TypeError(f"context {dict(context)!r:.80} does not fit the graph's context_schema "
                        f"{getattr(schema, '__name__', schema)}: {exc}") from None
