"""Pipeline files: YAML with steps of type source / processor / sink (LangStream's layout).

::

    name: enrich
    streamingCluster:                                # optional: topics on Redis Streams
      type: redis
      configuration: {url: "redis://127.0.0.1:6379/0", claim-idle: 30}
    errors: {retries: 2, on-failure: skip}          # the default of every step
    pipeline:                                        # or "steps"
      - name: read
        type: source                                 # python-source works too
        className: myapp.agents.ReadFiles            # (or under configuration:)
        output: raw                                  # a topic
        configuration: {path: "in/"}
      - name: enrich
        type: processor
        className: myapp.agents.Enrich
        input: raw
        errors: {retries: 3, on-failure: dead-letter, dead-letter-topic: failed}
        concurrency: 4
        batch-size: 100                              # the most records per call
        linger: 0.005                                # a source waits this long to fill one
      - name: answer
        type: processor
        graph: myapp.graphs:app                      # a compiled graph as the processor
        configuration: {input: question, output: answer}
      - name: store
        type: sink
        className: myapp.agents.Store

``className`` (``module.Class`` or ``module:Class``) and ``graph`` (``module:attr``) are imported
from this file, which is the user's configuration; nothing is ever imported because a record
named it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from .pipeline import Pipeline, Step
from .topics import MemoryTopics, RedisTopics

__all__ = ["load_pipeline"]

_TYPES = {"source": "source", "processor": "processor", "sink": "sink",
          "python-source": "source", "python-processor": "processor", "python-sink": "sink",
          "python-function": "processor"}
_STEP_KEYS = {"name", "id", "type", "className", "graph", "input", "output", "configuration",
              "errors", "concurrency", "batch-size", "batch_size", "linger", "resources"}


def _import(path: str, where: str) -> Any:
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ValueError(f"{where}: {path!r} is not module.Class or module:attr")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{where}: cannot import {module!r} ({exc})") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{where}: {module!r} has no {attr!r}") from None
    return obj


def _agent(spec: dict[str, Any], where: str) -> Any:
    config = dict(spec.get("configuration") or {})
    if "graph" in spec:
        from ..engine.compiled import CompiledGraph
        from .graph import graph_processor

        graph = _import(spec["graph"], where)
        if callable(graph) and not isinstance(graph, CompiledGraph):
            graph = graph()
        if not isinstance(graph, CompiledGraph):
            raise ValueError(f"{where}: graph {spec['graph']!r} is not a compiled graph")
        allowed = {"input", "output", "concurrency"}
        return graph_processor(graph, **{k: v for k, v in config.items() if k in allowed})
    name = spec.get("className") or config.get("className")
    if not isinstance(name, str):
        raise ValueError(f"{where}: needs className (or graph)")
    cls = _import(name, where)
    return cls()


def load_pipeline(path: str | Path, *, steps: list[str] | None = None,
                  redis_url: str | None = None) -> Pipeline:
    """The :class:`Pipeline` a file describes (``steps``: checked to exist; ``redis_url``:
    topics on Redis instead of the file's ``streamingCluster``)."""
    try:
        import yaml
    except ImportError as exc:
        raise ImportError(f'pipeline files need PyYAML: pip install "graphflow[streams]" '
                          f'({exc})') from exc
    text = Path(path).read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict):
        raise ValueError("a pipeline file is a mapping with a 'pipeline' (or 'steps') list")
    specs = doc.get("pipeline", doc.get("steps"))
    if not isinstance(specs, list) or not specs:
        raise ValueError("no steps: give a 'pipeline' (or 'steps') list")
    cluster = doc.get("streamingCluster") or {}
    settings = cluster.get("configuration") or {}
    url = redis_url or (settings.get("url") if cluster.get("type") == "redis" else None)
    claim = float(settings.get("claim-idle", settings.get("claim_idle", 30.0)))
    topics = RedisTopics(url, claim_idle=claim) if url else MemoryTopics(claim_idle=claim)
    built = []
    for i, spec in enumerate(specs):
        where = f"step #{i + 1}" + (f" {spec.get('name')!r}" if isinstance(spec, dict) else "")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: a step is a mapping")
        unknown = set(spec) - _STEP_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        kind = _TYPES.get(str(spec.get("type")))
        if kind is None:
            raise ValueError(f"{where}: type must be source, processor or sink, not "
                             f"{spec.get('type')!r}")
        step = Step(_agent(spec, where), name=str(spec.get("name") or spec.get("id") or
                                                  f"step-{i + 1}"),
                    input=spec.get("input"), output=spec.get("output"),
                    errors=spec.get("errors"), concurrency=int(spec.get("concurrency", 1)),
                    batch_size=int(spec.get("batch-size", spec.get("batch_size", 1000))),
                    linger=float(spec.get("linger", Step.linger)),
                    config=dict(spec.get("configuration") or {}))
        if step.kind != kind:
            raise ValueError(f"{where}: declared a {kind} but its agent is a {step.kind}")
        built.append(step)
    pipeline = Pipeline(built, topics=topics, name=str(doc.get("name") or Path(path).stem),
                        errors=doc.get("errors"))
    if steps:
        missing = set(steps) - {s.name for s in pipeline.steps}
        if missing:
            raise ValueError(f"no step(s) {sorted(missing)} in the file")
    return pipeline
