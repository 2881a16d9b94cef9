"""Reading a ReAct reply: ``Thought / Action / Action Input`` or ``Final Answer``.

Models that follow the text protocol rarely follow it exactly. :func:`parse_react` accepts
label case and spacing variations (``ACTION :``, ``**Action Input:**``, ``Action_Input:``),
labels run together on one line, a hallucinated ``Observation:`` (everything from it on is
dropped), an action written as ``tool[input]`` / ``tool(input)`` (the input is read like an
``Action Input``: a JSON object, or a bare value for a tool with one argument), a JSON blob
``{"action": ..., "action_input": ...}``, and a missing ``Action:`` when there is one tool.

:func:`loads_lenient` reads the ``Action Input`` as JSON, repairing what models get wrong:
code fences, single quotes, trailing commas, unquoted keys, ``key=value`` pairs, Python's
``True``/``False``/``None``, comments, and unclosed brackets. It is a small parser, never
``eval``. A tool with a single argument also takes a bare value (``Action Input: 2 + 2``).

Whatever cannot be read becomes a :class:`ReActError` whose ``message`` is the Observation to
send back to the model (it names the problem and, for an unknown tool, the valid names).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ReActAction",
    "ReActError",
    "ReActFinal",
    "ReActStep",
    "loads_lenient",
    "parse_action_input",
    "parse_react",
]


@dataclass(frozen=True)
class ReActAction:
    """The model asks to call ``tool`` with ``args``."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    thought: str | None = None


@dataclass(frozen=True)
class ReActFinal:
    """The model gave its final answer."""

    answer: str
    thought: str | None = None


@dataclass(frozen=True)
class ReActError:
    """The reply could not be used; ``message`` is the Observation telling the model why."""

    message: str


ReActStep = ReActAction | ReActFinal | ReActError

_FORMAT_HINT = ("Reply either with 'Action: <tool name>' followed by 'Action Input: <JSON "
                "object>', or with 'Final Answer: <your answer>'.")
_FINAL_NAMES = frozenset({"finalanswer", "final", "finish", "answer", "respond", "done"})

# -- lenient JSON -----------------------------------------------------------------------------


class _Lenient:
    """A forgiving recursive-descent reader of JSON-like text (data only, nothing runs)."""

    _WORDS: Mapping[str, Any] = {"true": True, "false": False, "null": None, "none": None,
                                 "True": True, "False": False, "None": None, "undefined": None}
    _QUOTES: Mapping[str, str] = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019",
                                  "`": "`"}
    _ESCAPES: Mapping[str, str] = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f",
                                   "/": "/", "\\": "\\", '"': '"', "'": "'", "`": "`"}
    _NUMBER = re.compile(r"[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
    _WORD = re.compile(r"[A-Za-z_$][\w$.\-]*")
    MAX_DEPTH = 200

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    def fail(self, what: str) -> ValueError:
        near = self.s[self.i:self.i + 20]
        return ValueError(f"{what} at position {self.i}" + (f" (near {near!r})" if near else ""))

    def ws(self) -> None:
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c.isspace():
                self.i += 1
            elif s.startswith("//", self.i) or c == "#":
                end = s.find("\n", self.i)
                self.i = n if end < 0 else end + 1
            elif s.startswith("/*", self.i):
                end = s.find("*/", self.i + 2)
                self.i = n if end < 0 else end + 2
            else:
                return

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def value(self, *, in_container: bool) -> Any:
        self.ws()
        c = self.peek()
        if not c:
            raise self.fail("unexpected end of input")
        if c == "{":
            return self.container("{", "}")
        if c == "[":
            return self.container("[", "]")
        if c in self._QUOTES:
            return self.string()
        m = self._NUMBER.match(self.s, self.i)
        if m and m.group().strip("+-.") and self.ends_value(m.end(), in_container):
            self.i = m.end()
            return self.number(m.group())
        m = self._WORD.match(self.s, self.i)
        if m and m.group() in self._WORDS and self.ends_value(m.end(), in_container):
            self.i = m.end()
            return self._WORDS[m.group()]
        if in_container:  # a bare word inside {...} or [...]: a string up to , } ] or newline
            start = self.i
            while self.i < len(self.s) and self.s[self.i] not in ",}]\n":
                self.i += 1
            word = self.s[start:self.i].strip()
            if word:
                return word
        raise self.fail(f"unexpected character {c!r}")

    def ends_value(self, end: int, in_container: bool) -> bool:
        """Whether a token ending at ``end`` is a whole value (``2+2`` inside an object is a
        bare string, not the number 2 followed by garbage)."""
        after = self.s[end:end + 1]
        if after.isalnum() or after == "_":
            return False
        if not in_container:
            return True
        rest = self.s[end:].lstrip(" \t")
        return not rest or rest[0] in ",}]\n"

    @staticmethod
    def number(text: str) -> int | float:
        text = text.replace("_", "").lstrip("+")
        try:
            return int(text)
        except ValueError:
            return float(text)

    def string(self) -> str:
        s = self.s
        close = self._QUOTES[s[self.i]]
        self.i += 1
        out: list[str] = []
        while self.i < len(s):
            c = s[self.i]
            if c == "\\" and self.i + 1 < len(s):
                nxt = s[self.i + 1]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[self.i + 2:self.i + 6]):
                    out.append(chr(int(s[self.i + 2:self.i + 6], 16)))
                    self.i += 6
                    continue
                out.append(self._ESCAPES.get(nxt, "\\" + nxt))
                self.i += 2
                continue
            if c == close:
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        return "".join(out)  # unterminated: the text so far

    def key(self) -> str:
        c = self.peek()
        if c in self._QUOTES:
            return self.string()
        m = re.compile(r"[^\s:=,{}\[\]\"']+").match(self.s, self.i)
        if not m:
            raise self.fail("expected a key")
        self.i = m.end()
        return m.group()

    def container(self, open_: str, close: str) -> Any:
        self.depth += 1
        if self.depth > self.MAX_DEPTH:
            raise self.fail("nested too deeply")
        self.i += 1
        is_obj = open_ == "{"
        obj: dict[str, Any] = {}
        arr: list[Any] = []
        while True:
            self.ws()
            c = self.peek()
            if not c:  # unclosed at the end of the text: close it
                break
            if c == close:
                self.i += 1
                break
            if c == ",":  # leading, doubled or trailing commas
                self.i += 1
                continue
            if c in "}]":  # the wrong closing bracket: take it as ours
                self.i += 1
                break
            if is_obj:
                k = self.key()
                self.ws()
                if self.peek() in (":", "="):
                    self.i += 1
                    obj[k] = self.value(in_container=True)
                else:
                    raise self.fail(f"expected ':' after key {k!r}")
            else:
                arr.append(self.value(in_container=True))
        self.depth -= 1
        return obj if is_obj else arr


_DECODER = json.JSONDecoder()
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n?(.*?)(?:\n?[ \t]*```|\Z)", re.S)
_PAIRS = re.compile(r"^\s*[\"']?[A-Za-z_][\w-]*[\"']?\s*[:=]\s*\S")


def _unfence(text: str) -> str:
    text = text.strip()
    m = _FENCE.search(text)
    if m and (text.startswith("```") or text.count("```") >= 2):
        return m.group(1).strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text.strip("`").strip()
    return text


def loads_lenient(text: str) -> Any:
    """Parse JSON-like ``text`` forgivingly (see the module docstring); ``ValueError`` if it
    is not JSON-like at all. Never evaluates anything."""
    body = _unfence(text)
    if not body:
        raise ValueError("empty input")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        pass
    start = -1
    if body[0] not in "{[":
        brace = body.find("{")
        if brace >= 0 and not _PAIRS.match(body):
            start = brace  # e.g. 'the input is {"a": 1}'
        elif _PAIRS.match(body):
            body = "{" + body + "}"  # key: value, key=value pairs without braces
    reader = _Lenient(body)
    if start >= 0:
        reader.i = start
    value = reader.value(in_container=False)
    reader.ws()
    rest = reader.s[reader.i:].strip()
    if rest and not (start >= 0 or isinstance(value, (dict, list))):
        raise ValueError(f"unexpected text after the value: {rest[:20]!r}")
    return value


# -- tools ------------------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class _ToolInfo:
    __slots__ = ("names", "norm", "schemas")

    def __init__(self, tools: Any) -> None:
        self.schemas: dict[str, dict[str, Any] | None] = {}
        if isinstance(tools, Mapping):
            for name, schema in tools.items():
                self.schemas[str(name)] = schema if isinstance(schema, Mapping) else None
        elif tools is not None:
            for t in tools:
                if isinstance(t, str):
                    self.schemas[t] = None
                else:
                    self.schemas[t.name] = getattr(t, "schema", None)
        self.names = list(self.schemas)
        self.norm = {_norm(n): n for n in self.names}

    def properties(self, name: str) -> dict[str, Any]:
        schema = self.schemas.get(name) or {}
        props = schema.get("properties")
        return dict(props) if isinstance(props, Mapping) else {}

    def exact(self, raw: str) -> str | None:
        """The tool a written name means, ignoring case, spaces, ``_`` and ``-``."""
        if raw in self.schemas:
            return raw
        return self.norm.get(_norm(raw))

    def fuzzy(self, raw: str) -> str | None:
        """The one tool whose name appears in ``raw`` as a word (``use the calculator``)."""
        words = {_norm(w) for w in re.findall(r"[\w-]+", raw)}
        hits = [n for k, n in self.norm.items() if k in words]
        return hits[0] if len(hits) == 1 else None

    def listing(self) -> str:
        return ", ".join(self.names) if self.names else "(none: there are no tools)"


def _example(props: Mapping[str, Any]) -> str:
    sample = {k: "..." for k in list(props)[:3]}
    return json.dumps(sample) if sample else "{}"


def parse_action_input(text: str | None, tool: str, tools: Any = None) -> dict[str, Any]:
    """The arguments in an ``Action Input`` for ``tool``: a dict, or ``ValueError`` with an
    explanation meant for the model.

    A tool with a single argument also accepts a bare value (``"Paris"``, ``2 + 2``, ``42``),
    and a one-key object whose key is not the argument's name.
    """
    info = tools if isinstance(tools, _ToolInfo) else _ToolInfo(tools)
    props = info.properties(tool)
    single = next(iter(props)) if len(props) == 1 else None
    raw = _unfence(text or "")
    if not raw or raw.lower() in ("none", "null", "{}", "n/a", "no input"):
        return {}
    try:
        value = loads_lenient(raw)
    except ValueError as exc:
        if single is not None:
            return {single: _strip_quotes(raw)}
        raise ValueError(
            f"could not read the Action Input of {tool!r} as a JSON object ({exc}). Write "
            f"it as a JSON object, e.g. Action Input: {_example(props)}") from None
    if isinstance(value, dict):
        if single is not None and len(value) == 1 and single not in value:
            if raw.lstrip()[:1] not in "{[":
                return {single: _strip_quotes(raw)}  # 'Paris: the capital' is one string
            return {single: next(iter(value.values()))}
        return value
    if single is not None:
        if props[single].get("type") == "string" and not isinstance(value, str):
            value = _strip_quotes(raw)
        return {single: value}
    raise ValueError(
        f"the Action Input of {tool!r} must be a JSON object with its arguments, got "
        f"{type(value).__name__} {raw[:40]!r}; e.g. Action Input: {_example(props)}")


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1]
    return text


# -- the reply ---------------------------------------------------------------------------------

_LABELS = (r"thought|action[ \t_-]*input|action|final[ \t_-]*answer|observation|input")
_LINE_LABEL = re.compile(
    rf"^[ \t>*_#`\-]*(?:\d+[.)][ \t]*)?(?P<label>{_LABELS})[ \t*_`]*[:\uff1a][ \t*_`]*",
    re.I | re.M)
_INLINE_LABEL = re.compile(
    r"(?<=\s)[*_`]*(?P<label>Thought|Action Input|Action|Final Answer|Observation)"
    r"[*_`]*:[ \t*_`]*")
# "Thought: ...\nAction: <tool>\nAction Input: {...}", as the system prompt asks, to the letter
_CANONICAL = re.compile(
    r"Thought:[ \t*_`]*(?P<thought>[^\n]*)\nAction:[ \t*_`]*(?P<tool>[\w.-]+)[ \t]*\n"
    r"Action Input:[ \t*_`]*(?P<input>\{[^\n]*\})")
_CALL_FORM = re.compile(r"^(?P<name>[\w.-]+)\s*(?:\[(?P<br>.*)\]|\((?P<pa>.*)\))\s*$", re.S)


@functools.lru_cache(maxsize=256)
def _label_kind(label: str) -> str:
    key = re.sub(r"[ \t_-]+", "", label.lower())
    return {"actioninput": "input", "finalanswer": "final"}.get(key, key)


def _segments(text: str) -> list[tuple[str, str, int]]:
    """``(kind, value, value_start)`` for each label, in order."""
    marks = list(_LINE_LABEL.finditer(text))
    spans = [m.span() for m in marks]
    for m in _INLINE_LABEL.finditer(text):
        at = m.start()
        if not any(s <= at < e for s, e in spans):  # not inside a line label
            marks.append(m)
    if len(marks) > len(spans):
        marks.sort(key=_start)
    out: list[tuple[str, str, int]] = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append((_label_kind(m.group("label")), text[m.end():end].strip(), m.end()))
    return out


def _start(m: re.Match[str]) -> int:
    return m.start()


def _json_at(text: str) -> str | None:
    """The JSON object/array (or fenced block) ``text`` starts with, read past any label-like
    words inside its strings; None when ``text`` does not start with one."""
    body = text.lstrip()
    if body.startswith("```"):
        m = _FENCE.match(body)
        return m.group(1).strip() if m else None
    if body[:1] not in ("{", "["):
        return None
    try:
        return body[:_DECODER.raw_decode(body)[1]]  # valid JSON: the fast path
    except (ValueError, RecursionError):
        pass
    reader = _Lenient(body)
    try:
        reader.value(in_container=False)
    except ValueError:
        return None
    return body[:reader.i]


def _from_blob(data: Mapping[str, Any], info: _ToolInfo) -> ReActStep | None:
    """``{"action": name, "action_input": ...}`` (the JSON flavour of ReAct)."""
    keys = {_norm(k): k for k in data}
    if "action" not in keys:
        return None
    name = str(data[keys["action"]])
    raw = next((data[keys[k]] for k in ("actioninput", "input", "args", "arguments")
                if k in keys), None)
    thought = data.get(keys["thought"]) if "thought" in keys else None
    if _norm(name) in _FINAL_NAMES and info.exact(name) is None:
        answer = raw if isinstance(raw, str) else json.dumps(raw)
        return ReActFinal(answer.strip(), thought)
    text = raw if isinstance(raw, str) else json.dumps(raw if raw is not None else {})
    return _action(name, text, thought, info)


def _action(name: str, input_text: str | None, thought: str | None,
            info: _ToolInfo) -> ReActStep:
    name = name.strip().strip("`*'\"").strip().rstrip(".,;:").strip()
    resolved = info.exact(name) if name else None
    if resolved is None and input_text is None:
        m = _CALL_FORM.match(name)
        if m:  # tool[input] / tool(input)
            inner = m.group("br") if m.group("br") is not None else m.group("pa")
            return _action(m.group("name"), inner, thought, info)
        head, _, rest = name.partition(" ")
        if rest and info.exact(head) is not None:
            return _action(head, rest, thought, info)  # "calculator 2 + 2"
    if resolved is None and _norm(name) in _FINAL_NAMES:
        return ReActFinal(_strip_quotes(input_text or ""), thought)
    if resolved is None and name:
        resolved = info.fuzzy(name)
    if resolved is None:
        shown = name if name else "(nothing)"
        return ReActError(
            f"{shown!r} is not a valid tool. Valid tools: {info.listing()}. Write one of these "
            f"names exactly after 'Action:', or give your 'Final Answer:'.")
    try:
        args = parse_action_input(input_text, resolved, info)
    except ValueError as exc:
        return ReActError(f"Invalid Action Input: {exc}")
    return ReActAction(resolved, args, thought)


def parse_react(text: str, tools: Any = None) -> ReActStep:
    """Read one model reply of the ReAct protocol.

    Args:
        text: the model's reply.
        tools: the tools the model may call: ``Tool`` objects, ``{name: json_schema}``, or
            names. Used to resolve loosely written names and single-argument inputs.

    Returns:
        :class:`ReActAction`, :class:`ReActFinal`, or :class:`ReActError` (whose message is
        the Observation to send back). A reply without any ReAct label is taken as the final
        answer; an Action written before a Final Answer wins (the model went on to imagine
        the Observation and the answer).
    """
    info = tools if isinstance(tools, _ToolInfo) else _ToolInfo(tools)
    body = (text or "").replace("\r\n", "\n").strip()
    if not body:
        return ReActError(f"Your reply was empty. {_FORMAT_HINT}")
    if body[:1] in "{`":
        try:
            blob = loads_lenient(body)
        except ValueError:
            blob = None
        if isinstance(blob, Mapping):
            step = _from_blob(blob, info)
            if step is not None:
                return step
    step = _read_canonical(body, info)
    return step if step is not None else _read_labelled(body, info)


def _read_canonical(body: str, info: _ToolInfo) -> ReActStep | None:
    """The step of a reply in exactly the format the system prompt asks for (a thought, a
    known tool, a JSON object), read without scanning for labels — what
    :func:`_read_labelled` would find, faster (an agent loop reads one every turn); None for
    anything else."""
    m = _CANONICAL.fullmatch(body)
    if m is None or m["tool"] not in info.schemas:
        return None
    if _INLINE_LABEL.search(body, m.start("thought"), m.end("thought")) is not None:
        return None  # "Thought: ... Action: x" on one line: the general reading decides
    return _action(m["tool"], m["input"], m["thought"].strip() or None, info)


def _read_labelled(body: str, info: _ToolInfo) -> ReActStep:
    """:func:`parse_react` for a non-empty reply that is not a JSON blob: read its labels."""
    segs = _segments(body)
    if not segs:
        return ReActFinal(body)
    kinds = [k for k, _, _ in segs]
    first_action = kinds.index("action") if "action" in kinds else None
    first_final = kinds.index("final") if "final" in kinds else None
    chosen = min((i for i in (first_action, first_final) if i is not None), default=len(segs))
    thought = next((v for k, v, _ in reversed(segs[:chosen]) if k == "thought" and v), None)
    if first_action is not None and (first_final is None or first_action < first_final):
        value = segs[first_action][1]
        name, _, tail = value.partition("\n")
        input_text: str | None = None
        for kind, v, at in segs[first_action + 1:]:
            if kind in ("observation", "action", "final"):
                break  # the model went on to imagine the result: ignore the rest
            if kind == "input":
                input_text = _json_at(body[at:]) or v
                break
        if input_text is None and tail.strip():
            input_text = tail  # the input on the lines after the tool name
        return _action(name, input_text, thought, info)
    if first_final is not None:
        answer = body[segs[first_final][2]:].strip()
        if not answer:
            return ReActError(f"Your 'Final Answer:' was empty. {_FORMAT_HINT}")
        return ReActFinal(answer, thought)
    inputs = [(v, at) for k, v, at in segs if k == "input"]
    if inputs:
        if len(info.names) == 1:
            value, at = inputs[0]
            return _action(info.names[0], _json_at(body[at:]) or value, thought, info)
        return ReActError(
            f"Your reply has an 'Action Input:' but no 'Action:' naming the tool. Valid "
            f"tools: {info.listing()}.")
    return ReActError(f"Your reply has no 'Action:' and no 'Final Answer:'. {_FORMAT_HINT}")
