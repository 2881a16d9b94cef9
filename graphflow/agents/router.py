""":func:`llm_router`: a conditional edge whose decision a model makes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model

from ..messages import SystemMessage
from .react_parser import loads_lenient
from .state import messages_of

__all__ = ["llm_router", "match_route"]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def match_route(text: str, names: Sequence[str]) -> str | None:
    """The route a plain-text answer names: the whole answer (case, quotes, punctuation
    ignored), a JSON object's ``route``, or the only route name that appears in it as a word.
    None when it names none or several."""
    by_norm = {_norm(n): n for n in names}
    stripped = text.strip()
    if _norm(stripped) in by_norm:
        return by_norm[_norm(stripped)]
    try:
        data = loads_lenient(stripped)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        for key in ("route", "destination", "next", "choice", "answer"):
            value = data.get(key)
            if isinstance(value, str) and _norm(value) in by_norm:
                return by_norm[_norm(value)]
    words = [_norm(w) for w in re.findall(r"[\w-]+", text)]
    found = list(dict.fromkeys(by_norm[w] for w in words if w in by_norm))
    if len(found) == 1:
        return found[0]
    return None


class _RouteDecision(BaseModel):
    """Base of the decision models: reading a plain-text answer falls back to
    :func:`match_route` (models do not always answer in JSON)."""

    @classmethod
    def model_validate_json(cls, json_data: Any, **kwargs: Any) -> Any:
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError:
            text = json_data.decode() if isinstance(json_data, bytes) else str(json_data)
            names = list(getattr(cls.model_fields["route"].annotation, "__args__", ()))
            found = match_route(text, names)
            if found is None:
                raise
            return cls(route=found)


def _decision_model(routes: Mapping[str, str]) -> type[BaseModel]:
    choice = Literal[tuple(routes)]  # type: ignore[valid-type]
    described = "; ".join(f"{k}: {v}" for k, v in routes.items())
    return create_model("RouteDecision", __base__=_RouteDecision,
                        __doc__="The route the conversation takes next.",
                        route=(choice, Field(description=f"where to go next ({described})")))


def _system_text(routes: Mapping[str, str], system: str | None) -> str:
    intro = system.strip() if system else (
        "You route a conversation. Read it and choose the route that fits the user's latest "
        "request best.")
    listing = "\n".join(f"- {name}: {desc}" for name, desc in routes.items())
    return (f"{intro}\n\nRoutes:\n{listing}\n\nAnswer with a JSON object "
            f'{{"route": "<route name>"}} and nothing else.')


def llm_router(model: Any, routes: Mapping[str, str], *, system: str | None = None,
               default: str | None = None, messages_key: str = "messages") -> Any:
    """A router for ``add_conditional_edges(src, router)`` whose choice a model makes.

    Args:
        model: a :class:`~graphflow.models.ChatModel`.
        routes: route (node name, or ``END``) -> description of when to take it.
        system: instructions for the model (the routes and the answer format are appended).
        default: where to go when the model's answer names no route (None: raise).
        messages_key: the state key holding the conversation.

    The model is asked for structured output (``response_format``: a pydantic model whose
    ``route`` field is a ``Literal`` of the route names); a plain-text answer is matched
    against the names instead. The returned function's return annotation is that
    ``Literal[...]`` (plus ``default``), so the graph checks the targets at compile time and
    diagrams show them.
    """
    routes = dict(routes)
    if not routes:
        raise ValueError("llm_router needs at least one route")
    names = list(routes)
    targets = names + ([default] if default is not None and default not in names else [])
    decision_model = _decision_model(routes)
    prompt = SystemMessage(content=_system_text(routes, system))

    def llm_router(state: Any) -> Any:
        from ..models.base import StructuredOutputError

        history = messages_of(state, messages_key)
        try:
            answer = model.invoke([prompt, *history], response_format=decision_model)
        except StructuredOutputError:
            if default is not None:
                return default
            raise
        parsed = answer.parsed
        choice = parsed.get("route") if isinstance(parsed, Mapping) else getattr(
            parsed, "route", None)
        if choice is None and answer.content:
            choice = match_route(answer.content, names)
        if choice in targets:
            return choice
        if default is not None:
            return default
        raise ValueError(f"llm_router: the model's answer {answer.content[:80]!r} names none "
                         f"of the routes {names}")

    llm_router.__annotations__ = {"state": Any, "return": Literal[tuple(targets)]}
    llm_router.routes = routes  # type: ignore[attr-defined]
    llm_router.response_format = decision_model  # type: ignore[attr-defined]
    return llm_router
