"""Tests of graphflow.draw, on hand-built graphs shaped like ``CompiledGraph.get_graph()``.

Golden files live in tests/golden/; regenerate them (then review the diff!) with
``GRAPHFLOW_UPDATE_GOLDEN=1 pytest tests/test_draw.py``.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import operator
import os
import random
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated, Any, TypedDict

import networkx as nx
import pytest

from graphflow.draw import (
    draw,
    expand_subgraphs,
    layout,
    to_ascii,
    to_dot,
    to_json,
    to_mermaid,
    to_png,
    to_svg,
)
from graphflow.draw.style import text_width

GOLDEN = Path(__file__).parent / "golden"
S, E = "__start__", "__end__"
SVG_NS = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------------------------------------
# hand-built graphs


def new_graph(name: str, nodes: dict[str, str]) -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(name=name)
    for n, kind in nodes.items():
        G.add_node(n, kind=kind, metadata={})
    return G


def edge(G: nx.MultiDiGraph, u: str, v: str, kind: str = "static", label: str | None = None,
         **extra: Any) -> None:
    G.add_edge(u, v, kind=kind, label=label, **extra)


class FakeCompiled:
    """Stands in for a child CompiledGraph: only ``get_graph()`` is needed."""

    def __init__(self, G: nx.MultiDiGraph) -> None:
        self._G = G
        self.name = G.graph["name"]

    def get_graph(self) -> nx.MultiDiGraph:
        return self._G


def g_linear() -> nx.MultiDiGraph:
    G = new_graph("linear", {S: "start", "fetch": "function", "summarize": "function", E: "end"})
    edge(G, S, "fetch")
    edge(G, "fetch", "summarize")
    edge(G, "summarize", E)
    return G


def g_agent_loop() -> nx.MultiDiGraph:
    G = new_graph("agent loop", {S: "start", "agent": "agent", "tools": "tool", E: "end"})
    edge(G, S, "agent")
    edge(G, "agent", "tools", "conditional", "continue", router="should_continue")
    edge(G, "agent", E, "conditional", None, router="should_continue")
    edge(G, "tools", "agent")
    return G


WEIRD = 'say "hi" <b>&#1;'


def g_kinds() -> nx.MultiDiGraph:
    """Every node kind and edge kind, a self-loop, and names that need escaping."""
    G = new_graph("kinds & <edges>", {
        S: "start", "plan": "router", "search-web": "tool", "search docs": "tool",
        "recall": "memory", "merge": "function", "writer": "agent", WEIRD: "function",
        "end": "function", "review": "subgraph", E: "end",
    })
    G.nodes["review"]["graph"] = object()  # not expandable: no get_graph()
    edge(G, S, "plan")
    edge(G, "plan", "search-web", "conditional", "web", router="route")
    edge(G, "plan", "search docs", "conditional", "docs", router="route")
    edge(G, "plan", "recall", "conditional", None, router="route")
    for src in ("search-web", "search docs"):
        edge(G, src, "merge", "join", None, join=("search-web", "search docs"))
    edge(G, "recall", "merge")
    edge(G, "merge", "writer")
    edge(G, "writer", "writer", "conditional", "revise", router="check")
    edge(G, "writer", WEIRD, "command")
    edge(G, "writer", "end", "command", "finish")
    edge(G, WEIRD, "review")
    edge(G, "end", "review")
    edge(G, "review", E)
    return G


def g_inner() -> nx.MultiDiGraph:
    G = new_graph("inner", {S: "start", "a": "function", "b": "tool", E: "end"})
    edge(G, S, "a")
    edge(G, "a", "b")
    edge(G, "b", E)
    return G


def g_research() -> nx.MultiDiGraph:
    G = new_graph("research", {S: "start", "search": "tool", "deep": "subgraph",
                               "rank": "function", E: "end"})
    G.nodes["deep"]["graph"] = FakeCompiled(g_inner())
    edge(G, S, "search")
    edge(G, "search", "deep")
    edge(G, "deep", "rank")
    edge(G, "rank", "search", "conditional", "retry", router="good_enough")
    edge(G, "rank", E, "conditional", "done", router="good_enough")
    return G


def g_nested() -> nx.MultiDiGraph:
    G = new_graph("nested", {S: "start", "prepare": "function", "research": "subgraph",
                             "answer": "agent", E: "end"})
    G.nodes["research"]["graph"] = FakeCompiled(g_research())
    edge(G, S, "prepare")
    edge(G, "prepare", "research")
    edge(G, "prepare", "answer", "conditional", "skip", router="need_research")
    edge(G, "research", "answer")
    edge(G, "answer", E)
    return G


def g_nested_expanded() -> nx.MultiDiGraph:
    return expand_subgraphs(g_nested())


def g_chain(name: str, steps: int) -> nx.MultiDiGraph:
    names = [f"{name}_step{i}" for i in range(steps)]
    G = new_graph(name, {S: "start", **{n: "function" for n in names}, E: "end"})
    for a, b in zip([S, *names], [*names, E], strict=True):
        edge(G, a, b)
    return G


def g_parallel_expanded() -> nx.MultiDiGraph:
    """Three subgraphs side by side (one a diamond), a loose node with a self-loop between."""
    diamond = new_graph("w", {S: "start", "p": "tool", "q": "tool", "r": "agent", E: "end"})
    for a, b in ((S, "p"), (S, "q"), ("p", "r"), ("q", "r"), ("r", E)):
        edge(diamond, a, b)
    G = new_graph("parallel", {S: "start", "A": "subgraph", "B": "subgraph", "C": "function",
                               "W": "subgraph", "D": "function", E: "end"})
    G.nodes["A"]["graph"] = FakeCompiled(g_chain("a", 3))
    G.nodes["B"]["graph"] = FakeCompiled(g_chain("b", 1))
    G.nodes["W"]["graph"] = FakeCompiled(diamond)
    for x in "ABCW":
        edge(G, S, x)
    for a, b in (("A", "D"), ("B", "D"), ("C", "D"), ("W", E), ("D", E)):
        edge(G, a, b)
    edge(G, "C", "C", "conditional", "loop")
    return expand_subgraphs(G)


GRAPHS = {
    "linear": g_linear,
    "agent_loop": g_agent_loop,
    "kinds": g_kinds,
    "nested": g_nested,
    "nested_expanded": g_nested_expanded,
}


def random_graph(n: int = 200, seed: int = 7) -> nx.MultiDiGraph:
    """DAG-ish graph: forward edges between nearby nodes, some back edges and long jumps."""
    rng = random.Random(seed)
    kinds = ["function", "agent", "tool", "router", "memory", "subgraph"]
    G = nx.MultiDiGraph(name=f"random {n}")
    G.add_node(S, kind="start", metadata={})
    names = [f"node_{i}" + "x" * rng.randrange(0, 12) for i in range(n)]
    for name in names:
        G.add_node(name, kind=rng.choice(kinds), metadata={})
    G.add_node(E, kind="end", metadata={})
    edge(G, S, names[0])
    for i, name in enumerate(names[1:], start=1):
        edge(G, names[rng.randrange(max(0, i - 6), i)], name)
    for _ in range(n // 2):
        i = rng.randrange(n - 1)
        j = min(n - 1, i + rng.randrange(1, 25))
        kind = rng.choice(["static", "conditional", "join", "command"])
        edge(G, names[i], names[j], kind, rng.choice([None, "go", "maybe later"]))
    for _ in range(n // 10):
        j = rng.randrange(n - 1)
        i = min(n - 1, j + rng.randrange(1, 30))
        edge(G, names[i], names[j], "conditional", "retry")
    for name in rng.sample(names, max(1, n // 40)):
        edge(G, name, name, "conditional", "again")
    for name in names[-5:]:
        edge(G, name, E)
    return G


# ---------------------------------------------------------------------------------------------
# golden Mermaid / DOT


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GRAPHFLOW_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with GRAPHFLOW_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_mermaid_golden(name: str) -> None:
    check_golden(f"{name}.mmd", to_mermaid(GRAPHS[name]()))


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_dot_golden(name: str) -> None:
    check_golden(f"{name}.dot", to_dot(GRAPHS[name]()))


def test_mermaid_highlight_golden() -> None:
    text = to_mermaid(g_agent_loop(), highlight={"agent", "tools"},
                      highlight_edges={("agent", "tools")})
    check_golden("agent_loop_highlight.mmd", text)


def test_dot_highlight_golden() -> None:
    text = to_dot(g_agent_loop(), highlight={"agent"}, highlight_edges={("tools", "agent")})
    check_golden("agent_loop_highlight.dot", text)


def test_mermaid_syntax_details() -> None:
    text = to_mermaid(g_kinds())
    assert text.startswith('flowchart TD\n    subgraph gf_title["kinds #amp; #lt;edges#gt;"]\n')
    assert '__start__(("START")):::gf_start' in text
    assert '__end__(("END")):::gf_end' in text
    assert 'plan -.->|"web"| search_web' in text
    assert "plan -.-> recall" in text  # conditional without label
    assert 'search_web ==>|"join"| merge' in text
    assert "%% join: merge waits for all of: search-web, search docs" in text
    # "end" is a Mermaid keyword: its id is prefixed, its label kept
    assert 'n_end["end"]:::gf_function' in text
    assert "say #quot;hi#quot; #lt;b#gt;#amp;#35;1;" in text
    for kind in ("start", "end", "function", "subgraph", "agent", "tool", "router", "memory"):
        assert f"classDef gf_{kind} " in text
    # ids are unique
    defs = [line.split("[")[0].split("(")[0].split("{")[0].strip()
            for line in text.splitlines() if ":::" in line]
    assert len(defs) == len(set(defs)) == g_kinds().number_of_nodes()


def test_mermaid_title_is_shown_as_written() -> None:
    """Mermaid renders a front-matter title as HTML (``<...>`` vanishes, ``&`` shows as
    ``&amp;``): such a title goes on an invisible block around the chart instead."""
    text = to_mermaid(g_kinds())  # titled "kinds & <edges>"
    assert "title:" not in text
    assert 'subgraph gf_title["kinds #amp; #lt;edges#gt;"]' in text
    assert "style gf_title fill:none,stroke:none" in text
    assert to_mermaid(g_linear()).startswith('---\ntitle: "linear"\n---\nflowchart TD\n')
    assert to_mermaid(g_kinds(), title=False).startswith("flowchart TD\n    __start__")


def test_mermaid_styles_clusters_edge_kinds_and_direction() -> None:
    text = to_mermaid(g_nested_expanded(), direction="LR")
    assert "flowchart LR\n" in text
    assert "style cluster_research fill:#f8fafc,stroke:#94a3b8" in text
    assert "style cluster_research_deep fill:#f1f5f9,stroke:#94a3b8" in text
    edges = [line for line in text.splitlines() if re.match(r"\s+\S+ (-->|-\.->|==>)", line)]
    conditional = [str(i) for i, line in enumerate(edges) if "-.->" in line]
    assert f"linkStyle {','.join(conditional)} stroke:#2563eb" in text
    with pytest.raises(ValueError, match="direction"):
        to_mermaid(g_linear(), direction="BT")


def test_mermaid_subgraph_blocks() -> None:
    text = to_mermaid(g_nested_expanded())
    assert 'subgraph cluster_research["research"]' in text
    assert 'subgraph cluster_research_deep["deep"]' in text
    assert text.count("\n    end\n") + text.count("\n        end\n") == 2


def test_dot_syntax_details() -> None:
    text = to_dot(g_kinds())
    assert '"plan" -> "search-web" [style="dashed", color="#2563eb", label=" web ",' in text
    assert '"say \\"hi\\" <b>&amp;#1;" [label="say \\"hi\\" <b>&amp;#1;"' in text
    assert 'shape="doublecircle"' in text and 'shape="circle"' in text
    nested = to_dot(g_nested_expanded())
    assert 'subgraph "cluster_research" {' in nested
    assert 'subgraph "cluster_research:deep" {' in nested


DOT = shutil.which("dot")


@pytest.mark.skipif(
    DOT is None and os.environ.get("CI") != "true",
    reason="Graphviz `dot` binary not installed (apt-get install graphviz): DOT not validated",
)
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_dot_accepted_by_graphviz(name: str) -> None:
    assert DOT is not None, "CI=true but the Graphviz `dot` binary is missing"
    for text in (to_dot(GRAPHS[name]()), to_dot(GRAPHS[name](), direction="LR"),
                 to_dot(GRAPHS[name](), highlight={S, E}, highlight_edges={(S, "x"): 2})):
        proc = subprocess.run([DOT, "-Tsvg"], input=text.encode(), capture_output=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        assert b"Warning" not in proc.stderr and b"Error" not in proc.stderr, proc.stderr
        ET.fromstring(proc.stdout)


def _mermaid_cli() -> tuple[str, str] | None:
    """``(mmdc, chromium)``: mermaid-cli (on PATH, or where .ci/run installs it) and a system
    Chromium for it to drive (mermaid-cli must never download a browser)."""
    local = Path(__file__).resolve().parent.parent / ".ci" / "node" / "node_modules" / ".bin"
    mmdc = shutil.which("mmdc") or shutil.which("mmdc", path=str(local))
    chromium = (os.environ.get("PUPPETEER_EXECUTABLE_PATH") or shutil.which("chromium")
                or shutil.which("chromium-browser"))
    return (mmdc, chromium) if mmdc and chromium else None


MERMAID_CLI = _mermaid_cli()


@pytest.mark.skipif(
    MERMAID_CLI is None and os.environ.get("CI") != "true",
    reason="mermaid-cli (npm @mermaid-js/mermaid-cli) or Chromium not installed: Mermaid output "
           "not parsed",
)
def test_mermaid_accepted_and_rendered_by_mermaid_cli(tmp_path: Path) -> None:
    assert MERMAID_CLI is not None, "CI=true but mermaid-cli (mmdc) or chromium is missing"
    mmdc, chromium = MERMAID_CLI
    charts = {name: to_mermaid(build()) for name, build in sorted(GRAPHS.items())}
    charts["lr_highlight_counts"] = to_mermaid(
        g_nested_expanded(), direction="LR", highlight={"prepare"},
        highlight_edges={(S, "prepare"): 1, ("research:rank", "research:search"): 3})
    charts["colon"] = to_mermaid(g_colon())
    send = new_graph("fan & merge", {S: "start", "split": "router", "work": "tool", E: "end"})
    edge(send, S, "split")
    edge(send, "split", "work", "send")
    edge(send, "work", E)
    charts["send"] = to_mermaid(send, highlight_edges={("split", "work"): 4})
    source = tmp_path / "charts.md"
    source.write_text("".join(f"```mermaid\n{text}```\n\n" for text in charts.values()),
                      encoding="utf-8")
    config = tmp_path / "puppeteer.json"
    config.write_text(json.dumps({"executablePath": chromium, "args": [
        "--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]}))
    proc = subprocess.run([mmdc, "-q", "-p", str(config), "-i", str(source), "-o",
                           str(tmp_path / "out.md")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    texts = {}
    for i, name in enumerate(charts, start=1):
        root = ET.fromstring((tmp_path / f"out-{i}.svg").read_bytes())
        texts[name] = " ".join(" ".join(el.itertext()) for el in root.iter())
    assert "kinds & <edges>" in texts["kinds"]  # the title, shown as written
    assert 'say "hi" <b>&#1;' in texts["kinds"]
    assert "&amp;" not in texts["kinds"]
    assert "stage: 2" in texts["colon"] and "b:c" in texts["colon"]
    assert "fan & merge" in texts["send"] and "Send \u00d74" in texts["send"]
    assert "retry \u00d73" in texts["lr_highlight_counts"]


# ---------------------------------------------------------------------------------------------
# expand_subgraphs


def test_expand_unlimited() -> None:
    H = g_nested_expanded()
    assert set(H.nodes) == {S, E, "prepare", "answer", "research:search", "research:rank",
                            "research:deep:a", "research:deep:b"}
    assert H.nodes["research:search"]["cluster"] == ("research",)
    assert H.nodes["research:deep:a"]["cluster"] == ("research", "deep")
    assert H.nodes["research:deep:b"]["kind"] == "tool"
    pairs = {(u, v, d["kind"], d["label"]) for u, v, d in H.edges(data=True)}
    assert pairs == {
        (S, "prepare", "static", None),
        ("prepare", "research:search", "static", None),  # parent edge -> child START target
        ("prepare", "answer", "conditional", "skip"),
        ("research:search", "research:deep:a", "static", None),
        ("research:deep:a", "research:deep:b", "static", None),
        ("research:deep:b", "research:rank", "static", None),
        ("research:rank", "research:search", "conditional", "retry"),
        ("research:rank", "answer", "static", None),  # child END source -> parent target
        ("answer", E, "static", None),
    }
    assert "graph" not in H.nodes["prepare"]
    assert H.graph["name"] == "nested"


def test_expand_depth_levels() -> None:
    one = expand_subgraphs(g_nested(), depth=1)
    assert "research:deep" in one
    assert one.nodes["research:deep"]["kind"] == "subgraph"
    assert one.nodes["research:deep"]["cluster"] == ("research",)
    zero = expand_subgraphs(g_nested(), depth=0)
    assert set(zero.nodes) == set(g_nested().nodes)
    assert expand_subgraphs(g_kinds()).number_of_nodes() == g_kinds().number_of_nodes()


def test_expand_rewires_joins_self_loops_and_passthrough() -> None:
    child = new_graph("child", {S: "start", "x": "function", "y": "function", E: "end"})
    edge(child, S, "x")
    edge(child, S, "y")
    edge(child, "x", E)
    edge(child, "y", E)
    empty = new_graph("empty", {S: "start", E: "end"})
    edge(empty, S, E)
    G = new_graph("p", {S: "start", "sub": "subgraph", "other": "function", "noop": "subgraph",
                        "j": "function", E: "end"})
    G.nodes["sub"]["graph"] = FakeCompiled(child)
    G.nodes["noop"]["graph"] = FakeCompiled(empty)
    edge(G, S, "sub")
    edge(G, S, "other")
    edge(G, "sub", "sub", "conditional", "again")
    edge(G, "sub", "j", "join", None, join=("sub", "other"))
    edge(G, "other", "j", "join", None, join=("sub", "other"))
    edge(G, "j", "noop")
    edge(G, "noop", E)
    H = expand_subgraphs(G)
    assert {(u, v) for u, v in H.edges()} == {
        (S, "sub:x"), (S, "sub:y"), (S, "other"),
        ("sub:x", "sub:x"), ("sub:x", "sub:y"), ("sub:y", "sub:x"), ("sub:y", "sub:y"),
        ("sub:x", "j"), ("sub:y", "j"), ("other", "j"),
        ("j", E),  # through the pass-through child
    }
    for _, _, d in H.in_edges("j", data=True):
        assert d["join"] == ("sub:x", "sub:y", "other")


def g_colon() -> nx.MultiDiGraph:
    """A subgraph whose name contains ':' (and one whose child's name does)."""
    inner = new_graph("stage: 2", {S: "start", "a": "function", "b:c": "tool", E: "end"})
    edge(inner, S, "a")
    edge(inner, "a", "b:c")
    edge(inner, "b:c", E)
    G = new_graph("colons", {S: "start", "stage: 2": "subgraph", E: "end"})
    G.nodes["stage: 2"]["graph"] = FakeCompiled(inner)
    edge(G, S, "stage: 2")
    edge(G, "stage: 2", E)
    return expand_subgraphs(G)


def test_subgraph_names_with_colons_are_one_cluster_in_every_format() -> None:
    H = g_colon()
    assert H.nodes["stage: 2:a"]["cluster"] == ("stage: 2",)
    assert H.nodes["stage: 2:b:c"]["cluster"] == ("stage: 2",)
    L = layout(H)
    assert [(c.path, c.label) for c in L.clusters] == [(("stage: 2",), "stage: 2")]
    assert {L.nodes[n].label for n in ("stage: 2:a", "stage: 2:b:c")} == {"a", "b:c"}
    root = ET.fromstring(to_svg(H))
    clusters = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "cluster"]
    assert [json.loads(g.get("data-name")) for g in clusters] == [["stage: 2"]]
    mmd = to_mermaid(H)
    assert mmd.count("subgraph ") == 1 and '["stage: 2"]' in mmd
    dot = to_dot(H)
    assert dot.count("subgraph ") == 1 and 'label="stage: 2"' in dot
    assert json.loads(to_json(H))["nodes"][1]["cluster"] == ["stage: 2"]


# ---------------------------------------------------------------------------------------------
# SVG / PNG / ASCII / JSON


def expected_labels(G: nx.MultiDiGraph) -> set[str]:
    out = set()
    for n, d in G.nodes(data=True):
        if n == S:
            out.add("START")
        elif n == E:
            out.add("END")
        elif d.get("cluster"):
            out.add(n[len(":".join(d["cluster"])) + 1:])
        else:
            out.add(n)
    return out


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_svg_is_xml_with_all_labels(name: str) -> None:
    G = GRAPHS[name]()
    root = ET.fromstring(to_svg(G))
    assert root.tag == f"{SVG_NS}svg"
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    assert expected_labels(G) <= texts
    for _, _, d in G.edges(data=True):
        if d["kind"] == "conditional" and d["label"]:
            assert d["label"] in texts
    assert float(root.get("width")) > 50 and float(root.get("height")) > 50
    nodes = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "node"]
    assert {g.get("data-name") for g in nodes} == {str(n) for n in G.nodes}


def test_svg_styles_kinds_edges_clusters_legend() -> None:
    svg = to_svg(g_kinds())
    root = ET.fromstring(svg)
    assert 'stroke-dasharray="6 4"' in svg  # conditional
    assert 'stroke-dasharray="2 3"' in svg  # command
    assert 'stroke-width="2.4"' in svg  # join
    legend = next(g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "legend")
    legend_texts = [t.text for t in legend.iter(f"{SVG_NS}text")]
    assert legend_texts == ["start", "end", "function", "subgraph", "agent", "tool", "router",
                            "memory", "static", "conditional", "join", "command"]
    assert "kinds &amp; &lt;edges&gt;" in svg
    clusters = [g for g in ET.fromstring(to_svg(g_nested_expanded())).iter(f"{SVG_NS}g")
                if g.get("class") == "cluster"]
    assert sorted(json.loads(g.get("data-name")) for g in clusters) == [
        ["research"], ["research", "deep"]]


def test_svg_highlight() -> None:
    plain = to_svg(g_agent_loop())
    lit = to_svg(g_agent_loop(), highlight={"agent"}, highlight_edges={("agent", "tools")})
    assert "#f97316" not in plain
    root = ET.fromstring(lit)
    groups = {g.get("data-name"): g for g in root.iter(f"{SVG_NS}g")}
    assert any(r.get("stroke") == "#f97316" for r in groups["agent"].iter(f"{SVG_NS}path"))
    edge_group = groups["agent -> tools (conditional)"]
    assert edge_group.find(f"{SVG_NS}path").get("stroke") == "#f97316"
    assert not any(r.get("stroke") == "#f97316" for r in groups["tools"].iter(f"{SVG_NS}path"))


def read_png(data: bytes) -> Any:
    from PIL import Image

    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_png_signature_and_size(name: str) -> None:
    pytest.importorskip("PIL")
    G = GRAPHS[name]()
    img = read_png(to_png(G, scale=1.0))
    L = layout(G)
    assert L.width <= img.width <= L.width + 400
    assert L.height <= img.height <= L.height + 200
    assert len(img.getcolors(1 << 20) or []) > 20  # not blank: antialiased colours
    big = read_png(to_png(G, scale=2.0))
    assert abs(big.width - 2 * img.width) <= 2 and abs(big.height - 2 * img.height) <= 2


def test_png_highlight_and_max_pixels() -> None:
    pytest.importorskip("PIL")
    lit = read_png(to_png(g_agent_loop(), scale=1, highlight={"agent"}))
    colors = {c for _, c in lit.getcolors(1 << 20)}
    assert (0xF9, 0x73, 0x16) in colors
    small = read_png(to_png(random_graph(60), scale=4, max_pixels=500_000))
    assert small.width * small.height <= 520_000


def test_png_without_freetype_falls_back_to_bitmap_font(monkeypatch: pytest.MonkeyPatch) -> None:
    ImageFont = pytest.importorskip("PIL.ImageFont")
    if not hasattr(ImageFont, "load_default_imagefont"):
        pytest.skip("this Pillow has no bitmap default font loader")
    bitmap = ImageFont.load_default_imagefont()

    def no_freetype(*args: Any, **kwargs: Any) -> Any:
        raise OSError("FreeType not available")

    monkeypatch.setattr(ImageFont, "load_default", lambda size=None: bitmap)
    monkeypatch.setattr(ImageFont, "truetype", no_freetype)
    G = g_kinds()
    img = read_png(to_png(G, scale=1.0))
    assert img.width >= layout(G).width
    # dark text pixels inside the "merge" box: the labels were drawn
    box = layout(G).nodes["merge"]
    top = 30.0  # title band
    crop = img.crop((int(box.left) + 4, int(box.top + top) + 4, int(box.right) - 4,
                     int(box.bottom + top) - 4)).convert("L")
    assert crop.getextrema()[0] < 100


def test_png_unicode_labels() -> None:
    pytest.importorskip("PIL")
    G = new_graph("ünïcödé", {S: "start", "résumé": "function", E: "end"})
    edge(G, S, "résumé")
    edge(G, "résumé", E, "conditional", "fertig ✓")
    assert read_png(to_png(G)).width > 100


def label_pixels(label: str, **options: Any) -> Any:
    """The inside of ``label``'s box in a PNG of a one-node graph, in grayscale."""
    G = new_graph("g", {S: "start", label: "function", E: "end"})
    edge(G, S, label)
    edge(G, label, E)
    img = read_png(to_png(G, scale=2.0, title=False, legend=False, **options)).convert("L")
    box = layout(G).nodes[label]
    return img.crop((round(box.left * 2) + 6, round(box.top * 2) + 6,
                     round(box.right * 2) - 6, round(box.bottom * 2) - 6))


def _cjk_font() -> str | None:
    from graphflow.draw.png import FALLBACK_FONTS, system_fonts

    found = system_fonts()
    return next((found[n.lower()] for n in FALLBACK_FONTS[:10] if n.lower() in found), None)


def test_png_draws_cjk_labels_with_a_font_that_has_them() -> None:
    pytest.importorskip("PIL")
    if _cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk)")
    one, other = label_pixels("\u6570\u636e"), label_pixels("\u636e\u6570")  # the same glyphs
    assert one.size == other.size
    assert one.getextrema()[0] < 90  # ink: the label was drawn
    # a missing-glyph box looks the same for every character: swapped glyphs would not differ
    diff = sum(abs(a - b) for a, b in zip(one.tobytes(), other.tobytes(), strict=True))
    assert diff > 255 * 40


def test_png_sets_ascii_and_other_text_in_one_typeface() -> None:
    pytest.importorskip("PIL")
    # "e" and "\u00e9" have the same advance: the "A" in front sits at the same place, and it
    # must look the same whether its label is plain ASCII or not
    ascii_only, accented = label_pixels("Ae"), label_pixels("A\u00e9")
    assert ascii_only.size == accented.size
    half = (0, 0, ascii_only.width // 2, ascii_only.height)
    assert ascii_only.crop(half).tobytes() == accented.crop(half).tobytes()


def test_png_without_pillow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "graphflow\[draw\]"'):
        to_png(g_linear())


def test_import_does_not_load_pillow() -> None:
    code = "import sys, graphflow.draw; print(any(m.split('.')[0] == 'PIL' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_ascii() -> None:
    text = to_ascii(g_agent_loop(), highlight={"tools"}, highlight_edges={("tools", "agent")})
    assert text.splitlines()[0] == "graph: agent loop"
    assert "│ START │" in text and "│ END │" in text
    assert "┃ tools [tool] ┃" in text
    assert "agent ┄┄▶ tools  [continue]" in text
    assert "* tools ──▶ agent  ↺" in text
    lines = text.splitlines()
    assert lines.index("│ START │") < lines.index("│ agent [agent] │") < lines.index("│ END │")
    plain = to_ascii(g_kinds(), ascii_only=True)
    assert plain.isascii()
    assert "writer ~~> end  [finish]" in plain
    wide = to_ascii(random_graph(40), width=60)
    assert max(len(line) for line in wide.splitlines()) <= 80


def test_json_node_link() -> None:
    G = g_nested()
    G.nodes["prepare"]["metadata"] = {"fn": test_json_node_link, "tags": {"b", "a"}, 1: (2, 3)}
    data = json.loads(to_json(G))
    assert data["graph"]["name"] == "nested"
    nodes = {n["id"]: n for n in data["nodes"]}
    assert "graph" not in nodes["research"] and nodes["research"]["kind"] == "subgraph"
    assert nodes["prepare"]["metadata"] == {
        "fn": "tests.test_draw.test_json_node_link" if __name__ == "tests.test_draw"
        else f"{__name__}.test_json_node_link", "tags": ["a", "b"], "1": [2, 3]}
    assert {(e["source"], e["target"]) for e in data["edges"]} == set(G.edges())
    back = nx.node_link_graph(data, edges="edges")
    assert back.is_multigraph() and back.number_of_edges() == G.number_of_edges()
    joins = json.loads(to_json(g_kinds()))
    assert any(e.get("join") == ["search-web", "search docs"] for e in joins["edges"])
    lit = json.loads(to_json(g_agent_loop(), highlight={"agent"}, highlight_edges={(S, "agent")}))
    assert [n["id"] for n in lit["nodes"] if n.get("highlight")] == ["agent"]
    assert [(e["source"], e["target"]) for e in lit["edges"] if e.get("highlight")] == [
        (S, "agent")]


# ---------------------------------------------------------------------------------------------
# layout


def overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def rects_of(L: Any) -> list[tuple[str, tuple[float, float, float, float]]]:
    out = [(str(n), (b.left, b.top, b.right, b.bottom)) for n, b in L.nodes.items()]
    for e in L.edges:
        if e.label_box is not None:
            lb = e.label_box
            rect = (lb.x - lb.width / 2, lb.y - lb.height / 2,
                    lb.x + lb.width / 2, lb.y + lb.height / 2)
            out.append((f"label {e.source}->{e.target}", rect))
    return out


def assert_no_overlap(L: Any) -> None:
    boxes = {n: b for n, b in L.nodes.items()}
    # within each layer, left to right, boxes are disjoint and ordered
    for row in L.layers:
        for a, b in itertools.pairwise(row):
            assert boxes[a].right <= boxes[b].left, (a, b)
    # and across everything (boxes and edge labels), pairwise
    rects = rects_of(L)
    for i, (na, ra) in enumerate(rects):
        for nb, rb in rects[i + 1:]:
            assert not overlaps(ra, rb), (na, ra, nb, rb)
    for name, (x0, y0, x1, y1) in rects:
        assert x0 >= 0 and y0 >= 0 and x1 <= L.width and y1 <= L.height, name


def clustered_graph(seed: int) -> nx.MultiDiGraph:
    """A parent graph with 1-3 expanded subgraphs and random forward and back edges between
    its nodes (edges routed around clusters left the canvas before)."""
    rng = random.Random(seed)
    subs = [g_chain(f"s{j}", rng.randrange(1, 5)) for j in range(rng.randrange(1, 4))]
    nodes = {f"x{i}": "function" for i in range(rng.randrange(1, 5))}
    nodes.update({f"sub{j}": "subgraph" for j in range(len(subs))})
    P = new_graph(f"clustered {seed}", {S: "start", **nodes, E: "end"})
    for j, child in enumerate(subs):
        P.nodes[f"sub{j}"]["graph"] = FakeCompiled(child)
    names = list(nodes)
    for i, n in enumerate(names):
        edge(P, rng.choice([S, *names[:i]]), n)
    for _ in range(rng.randrange(0, 6)):
        a, b = rng.sample(names, 2)
        edge(P, a, b, rng.choice(["static", "conditional"]), rng.choice([None, "retry", "go"]))
    for n in names[-2:]:
        edge(P, n, E)
    return expand_subgraphs(P)


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def assert_inside_canvas(svg: str) -> None:
    """Every point of every path (control points too), every shape and every text of ``svg``
    lies within its viewBox."""
    root = ET.fromstring(svg)
    _, _, w, h = map(float, root.get("viewBox").split())

    def inside(x: float, y: float, what: str) -> None:
        assert -0.01 <= x <= w + 0.01 and -0.01 <= y <= h + 0.01, (what, x, y, w, h)

    for el in root.iter():
        tag = el.tag.removeprefix(SVG_NS)
        if tag == "path":
            numbers = [float(v) for v in NUMBER.findall(el.get("d"))]
            for x, y in zip(numbers[::2], numbers[1::2], strict=True):
                inside(x, y, el.get("d")[:40])
        elif tag == "polygon":
            for pair in el.get("points").split():
                inside(*map(float, pair.split(",")), "polygon")
        elif tag == "rect":
            x, y = float(el.get("x")), float(el.get("y"))
            inside(x, y, "rect")
            inside(x + float(el.get("width")), y + float(el.get("height")), "rect")
        elif tag == "text":
            inside(float(el.get("x")), float(el.get("y")), el.text)


@pytest.mark.parametrize("options", [{}, {"direction": "LR"}, {"compact": True}])
def test_every_edge_point_and_label_is_on_the_canvas(options: dict) -> None:
    graphs = [build() for build in GRAPHS.values()] + [g_parallel_expanded(), g_colon()]
    graphs += [clustered_graph(seed) for seed in range(40)]
    graphs += [random_graph(30 + 10 * seed, seed=seed) for seed in range(3)]
    for G in graphs:
        assert_inside_canvas(to_svg(G, **options))


def test_layout_random_200_no_overlaps() -> None:
    G = random_graph(200)
    L = layout(G)
    assert set(L.nodes) == set(G.nodes)
    assert_no_overlap(L)
    # START on top, END alone at the bottom, forward edges point down
    assert L.layers[0] == [S] and L.layers[-1] == [E]
    widths = {b.width for b in L.nodes.values()}
    assert len(widths) > 5  # box width follows the label length
    down = sum(1 for e in L.edges if not e.reversed and not e.self_loop)
    assert down > 0.8 * len(L.edges)
    assert sum(1 for e in L.edges if e.self_loop) == 5
    for e in L.edges:
        if not e.self_loop:
            assert (e.points[0][1] < e.points[-1][1]) != e.reversed


@pytest.mark.parametrize("seed", range(5))
def test_layout_random_graphs_no_overlaps(seed: int) -> None:
    assert_no_overlap(layout(random_graph(30 + 20 * seed, seed=seed)))


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_layout_fixtures_no_overlaps(name: str) -> None:
    assert_no_overlap(layout(GRAPHS[name]()))


@pytest.mark.parametrize("build", [g_nested_expanded, g_parallel_expanded])
def test_layout_clusters_contain_their_nodes_only(build: Any) -> None:
    L = layout(build())
    assert_no_overlap(L)
    for c in L.clusters:
        rect = (c.x, c.y, c.x + c.width, c.y + c.height)
        for n, b in L.nodes.items():
            inside = (b.cluster or ())[:len(c.path)] == c.path
            box = (b.left, b.top, b.right, b.bottom)
            if inside:
                assert rect[0] < box[0] and box[2] < rect[2] and rect[1] < box[1]
                assert box[3] < rect[3]
            else:
                assert not overlaps(rect, box), (c.path, n)
    for i, a in enumerate(L.clusters):
        for b in L.clusters[i + 1:]:
            ra = (a.x, a.y, a.x + a.width, a.y + a.height)
            rb = (b.x, b.y, b.x + b.width, b.y + b.height)
            if b.path[:len(a.path)] == a.path:  # nested: strictly inside
                assert ra[0] < rb[0] and rb[2] < ra[2] and ra[1] < rb[1] and rb[3] < ra[3]
            elif a.path[:len(b.path)] != b.path:
                assert not overlaps(ra, rb), (a.path, b.path)


def test_layout_cluster_paths() -> None:
    assert {c.path for c in layout(g_nested_expanded()).clusters} == {
        ("research",), ("research", "deep")}
    assert {c.path for c in layout(g_parallel_expanded()).clusters} == {("A",), ("B",), ("W",)}


def test_layout_edges_end_at_boxes() -> None:
    L = layout(g_agent_loop())
    by_pair = {(e.source, e.target): e for e in L.edges}
    e = by_pair[("agent", "tools")]
    assert e.label == "continue" and e.label_box is not None and not e.reversed
    assert e.start[1] == pytest.approx(L.nodes["agent"].bottom)
    assert e.curves[-1][2][1] == pytest.approx(L.nodes["tools"].top)
    back = by_pair[("tools", "agent")]
    assert back.reversed
    assert back.start[1] == pytest.approx(L.nodes["tools"].top)
    assert back.curves[-1][2][1] == pytest.approx(L.nodes["agent"].bottom)
    loop = next(e for e in layout(g_kinds()).edges if e.self_loop)
    assert loop.source == loop.target == "writer" and loop.label == "revise"


def g_fan_in(k: int = 12) -> nx.MultiDiGraph:
    workers = [f"worker_{i}" for i in range(k)]
    G = new_graph("fan-in", {S: "start", **dict.fromkeys(workers, "tool"), "reduce": "function",
                             E: "end"})
    for w in workers:
        edge(G, S, w)
        edge(G, w, "reduce", "join", None, join=tuple(workers))
    edge(G, "reduce", E)
    return G


def curve_points(e: Any, steps: int = 16) -> list[tuple[float, float]]:
    from graphflow.draw.scene import sample_curve

    out, prev = [], e.start
    for c in e.curves:
        out.extend(sample_curve(prev, c, steps))
        prev = c[2]
    return out


def test_layout_left_to_right() -> None:
    for G in (g_agent_loop(), g_kinds(), g_nested_expanded(), random_graph(40)):
        L = layout(G, direction="LR")
        assert L.direction == "LR"
        boxes = L.nodes
        for row in L.layers:  # a layer is a column: its boxes stacked without overlapping
            for a, b in itertools.pairwise(row):
                assert boxes[a].bottom <= boxes[b].top, (a, b)
        rects = rects_of(L)
        for i, (na, ra) in enumerate(rects):
            for nb, rb in rects[i + 1:]:
                assert not overlaps(ra, rb), (na, nb)
        for e in L.edges:  # forward edges run rightwards, from the outline's right side
            if not e.self_loop and not e.reversed:
                src, dst = boxes[e.source], boxes[e.target]
                assert src.right - 0.5 * src.height <= e.start[0] <= src.right + 0.01
                assert dst.left - 0.01 <= e.curves[-1][2][0] <= dst.left + 0.5 * dst.height
        assert L.width > L.height or G.number_of_nodes() > 30
    assert to_dot(g_linear(), direction="LR").count('rankdir="LR"') == 1
    with pytest.raises(ValueError, match="direction must be one of TB, LR"):
        layout(g_linear(), direction="down")


def test_long_names_are_wrapped() -> None:
    name = "summarize_the_research_results_for_the_user"
    G = new_graph("wrap", {S: "start", name: "agent", E: "end"})
    edge(G, S, name)
    edge(G, name, E)
    box = layout(G).nodes[name]
    assert len(box.lines) == 2 and "".join(box.lines) == name
    assert box.width < text_width(name, 13.0) and box.height > 40
    assert layout(G, wrap=None).nodes[name].lines == [name]
    root = ET.fromstring(to_svg(G))
    node = next(g for g in root.iter(f"{SVG_NS}g") if g.get("data-name") == name)
    assert [t.text for t in node.iter(f"{SVG_NS}text")] == box.lines


def test_compact_mode_folds_a_long_pipeline() -> None:
    """A 60-node pipeline was 590 x 9,004 px; compact folds it into side-by-side bands."""
    pytest.importorskip("PIL")
    G = g_chain("pipeline", 60)
    tall = read_png(to_png(G))
    small = read_png(to_png(G, compact=True))
    assert tall.height > 6 * tall.width  # the default: one long column
    assert small.height < 2.5 * small.width and small.width < 3 * small.height
    assert small.width * small.height < 0.5 * tall.width * tall.height
    L = layout(G, compact=True)
    assert_no_overlap_anywhere(L)
    columns = {round(b.x) for n, b in L.nodes.items() if n not in (S, E)}
    assert len(columns) >= 3
    for e in L.edges:  # every edge, folded or not, still joins its two boxes
        assert math.dist(e.start, (L.nodes[e.source].x, L.nodes[e.source].bottom)) < 1
        assert math.dist(e.curves[-1][2], (L.nodes[e.target].x, L.nodes[e.target].top)) < 1
    wide = random_graph(60)  # broad enough already: not folded, only smaller
    assert layout(wide, compact=True).width < layout(wide).width


def assert_no_overlap_anywhere(L: Any) -> None:
    rects = rects_of(L)
    for i, (na, ra) in enumerate(rects):
        for nb, rb in rects[i + 1:]:
            assert not overlaps(ra, rb), (na, nb)


def outline_signature(svg: str, name: str) -> tuple:
    """A node's outline in its SVG, scaled to a unit box: its shape, whatever its size."""
    root = ET.fromstring(svg)
    group = next(g for g in root.iter(f"{SVG_NS}g") if g.get("data-name") == name)
    d = next(p for p in group.iter(f"{SVG_NS}path") if p.get("fill") != "none").get("d")
    numbers = [float(v) for v in NUMBER.findall(d)]
    xs, ys = numbers[::2], numbers[1::2]
    x0, y0, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return tuple((round((x - x0) / w, 1), round((y - y0) / h, 1)) for x, y in zip(xs, ys,
                                                                                 strict=True))


def test_node_kinds_have_shapes_not_only_colours() -> None:
    kinds = ("function", "subgraph", "agent", "tool", "router", "memory")
    G = new_graph("shapes", {S: "start", **{f"{k} node": k for k in kinds}, E: "end"})
    for k in kinds:
        edge(G, S, f"{k} node")
        edge(G, f"{k} node", E)
    svg = to_svg(G)
    shapes = {k: outline_signature(svg, f"{k} node") for k in kinds}
    shapes["start"] = outline_signature(svg, S)
    assert len(set(shapes.values())) == len(shapes)  # seven different silhouettes
    png = to_png(G, scale=1.0) if _has_pil() else None
    if png:  # and they survive in grayscale: the PNG draws the same scene
        assert read_png(png).convert("L").getextrema()[0] < 80


def _has_pil() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def test_self_loops_are_big_enough_to_read() -> None:
    L = layout(g_kinds())
    loop = next(e for e in L.edges if e.self_loop)
    box = L.nodes[loop.source]
    points = curve_points(loop)
    reach = max(x for x, _ in points) - box.right
    assert reach >= 20
    span = max(y for _, y in points) - min(y for _, y in points)
    assert span >= 16
    # the arrow ends square to the box side: its last stretch runs straight into the box
    _, c2, end = loop.curves[-1]
    assert c2[1] == pytest.approx(end[1]) and c2[0] > end[0] + 8
    assert loop.label_box is not None and loop.label_box.x - loop.label_box.width / 2 > (
        box.right + reach)


def test_paired_edges_are_spaced_apart() -> None:
    L = layout(g_agent_loop())
    there = next(e for e in L.edges if (e.source, e.target) == ("agent", "tools"))
    back = next(e for e in L.edges if (e.source, e.target) == ("tools", "agent"))
    a = curve_points(there)
    b = curve_points(back)
    closest = min(math.dist(p, q) for p in a for q in b)
    assert closest >= 18, closest  # (12 before)


def test_heavy_fan_in_keeps_its_arrowheads_apart() -> None:
    G = g_fan_in(12)
    L = layout(G)
    ends = sorted(e.curves[-1][2][0] for e in L.edges if e.target == "reduce")
    assert len(ends) == 12
    gaps = [b - a for a, b in itertools.pairwise(ends)]
    assert min(gaps) >= 10
    root = ET.fromstring(to_svg(G))
    heads = []
    for g in root.iter(f"{SVG_NS}g"):
        if g.get("class") == "edge" and "-> reduce" in g.get("data-name"):
            pts = [tuple(map(float, p.split(","))) for p in
                   g.find(f"{SVG_NS}polygon").get("points").split()]
            heads.append((min(x for x, _ in pts), max(x for x, _ in pts)))
    heads.sort()
    for (_, right), (left, _) in itertools.pairwise(heads):
        assert right < left  # arrowheads side by side, not merged into a bar
    # and the edges spread out on the way: no flat band where they all run together
    into = [e for e in L.edges if e.target == "reduce"]
    rows = {round(y) for e in into for _, y in curve_points(e)}
    assert max(rows) - min(rows) > 60


def test_cluster_titles_never_hide_an_edge() -> None:
    for G in (g_nested_expanded(), g_parallel_expanded(), clustered_graph(9)):
        root = ET.fromstring(to_svg(G))
        classes = [g.get("class") for g in root.iter(f"{SVG_NS}g")]
        last_title = max(i for i, c in enumerate(classes) if c == "cluster-label")
        first_edge = min(i for i, c in enumerate(classes) if c == "edge")
        assert last_title < first_edge  # titles first: an edge is drawn over, never under
    L = layout(g_nested_expanded())
    points = [p for e in L.edges for p in curve_points(e)]
    for c in L.clusters:  # and in TB the title's spot is kept clear of the entering edges
        x0, x1 = c.x + 6, c.x + 6 + text_width(c.label, 12.0) + 8
        y0, y1 = c.y + 3, c.y + 21
        assert not [p for p in points if x0 <= p[0] <= x1 and y0 <= p[1] <= y1], c.path


def test_layout_is_deterministic_and_handles_edge_cases() -> None:
    a, b = layout(random_graph(50)), layout(random_graph(50))
    assert [(n, p.x, p.y) for n, p in a.nodes.items()] == [
        (n, p.x, p.y) for n, p in b.nodes.items()]
    empty = layout(nx.MultiDiGraph())
    assert empty.nodes == {} and empty.layers == []
    single = nx.MultiDiGraph()
    single.add_node("solo")
    assert list(layout(single).nodes) == ["solo"]
    cyc = nx.MultiDiGraph()
    nx.add_cycle(cyc, ["a", "b", "c"])  # no START, no kinds, a pure cycle
    assert_no_overlap(layout(cyc))
    plain = nx.DiGraph([("a", "b"), ("b", "c")])  # not a multigraph
    assert "b" in to_svg(plain) and to_mermaid(plain) and to_dot(plain) and to_ascii(plain)


# ---------------------------------------------------------------------------------------------
# draw()


@pytest.mark.parametrize("suffix", [".svg", ".png", ".mmd", ".dot", ".json", ".txt"])
def test_draw_by_suffix(tmp_path: Path, suffix: str) -> None:
    if suffix == ".png":
        pytest.importorskip("PIL")
    path = tmp_path / f"graph{suffix}"
    assert draw(g_agent_loop(), path) == path
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    elif suffix == ".svg":
        ET.fromstring(data)
    elif suffix == ".mmd":
        assert data.decode().startswith("---\ntitle:")
    elif suffix == ".dot":
        assert data.decode().startswith('digraph "agent loop" {')
    elif suffix == ".json":
        assert json.loads(data)["graph"]["name"] == "agent loop"
    else:
        assert "│ agent [agent] │" in data.decode()


@pytest.mark.parametrize("suffix", [".svg", ".png", ".mmd", ".dot", ".json", ".txt"])
def test_draw_passes_highlight_to_every_format(tmp_path: Path, suffix: str) -> None:
    if suffix == ".png":
        pytest.importorskip("PIL")
    path = draw(g_agent_loop(), tmp_path / f"g{suffix}", highlight={"agent"},
                highlight_edges={("agent", "tools")})
    assert path.stat().st_size > 50


def test_draw_options(tmp_path: Path) -> None:
    path = draw(g_nested(), str(tmp_path / "N.MMD"), expand=True, highlight={"answer"})
    text = path.read_text()
    assert "subgraph cluster_research" in text and "gf_highlight" in text
    assert draw(g_linear(), tmp_path / "x.png", scale=1.0).stat().st_size > 100


def test_draw_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.mmd, \.dot, \.json, \.txt"):
        draw(g_linear(), tmp_path / "graph.jpeg")
    with pytest.raises(ValueError, match="suffix"):
        draw(g_linear(), tmp_path / "graph")
    assert not list(tmp_path.iterdir())


def test_renderers_accept_compiled_like_objects() -> None:
    fake = FakeCompiled(g_linear())
    assert to_mermaid(fake) == to_mermaid(g_linear())
    with pytest.raises(TypeError):
        to_svg(42)


# ---------------------------------------------------------------------------------------------
# through the real engine (skipped until graphflow.StateGraph exists)


def _engine() -> Any:
    try:
        from graphflow import END as END_
        from graphflow import START as START_
        from graphflow import StateGraph
    except ImportError as exc:  # pragma: no cover - before the engine lands
        pytest.skip(f"graphflow engine not available yet: {exc}")
    return StateGraph, START_, END_


class AgentState(TypedDict):
    messages: Annotated[list, operator.add]
    tries: int


def compiled_agent() -> Any:
    StateGraph, START_, END_ = _engine()
    State = AgentState

    def agent(state: State) -> dict:
        return {"messages": ["thought"], "tries": state.get("tries", 0) + 1}

    def tools(state: State) -> dict:
        return {"messages": ["result"]}

    def should_continue(state: State) -> str:
        return "go" if state["tries"] < 2 else "stop"

    inner = StateGraph(State)
    inner.add_node("lookup", tools, metadata={"kind": "tool"})
    inner.add_node("rank", tools)
    inner.add_edge(START_, "lookup")
    inner.add_edge("lookup", "rank")
    inner.add_edge("rank", END_)
    research = inner.compile(name="research")

    g = StateGraph(State)
    g.add_node("agent", agent, metadata={"kind": "agent"})
    g.add_node("tools", tools, metadata={"kind": "tool"})
    g.add_node("research", research)
    g.add_edge(START_, "agent")
    g.add_conditional_edges("agent", should_continue, {"go": "tools", "stop": END_})
    g.add_edge("tools", "research")
    g.add_edge("research", "agent")
    return g.compile(name="react")


def test_engine_graph_renders_everywhere(tmp_path: Path) -> None:
    app = compiled_agent()
    G = app.get_graph()
    assert G.nodes["research"]["kind"] == "subgraph"
    mmd = to_mermaid(app)
    assert 'agent -.->|"go"| tools' in mmd and 'agent -.->|"stop"| __end__' in mmd
    assert "research[[" in mmd
    root = ET.fromstring(to_svg(G))
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    assert {"START", "END", "agent", "tools", "research", "go", "stop"} <= texts
    data = json.loads(to_json(G))
    assert {n["id"] for n in data["nodes"]} == set(G.nodes)
    for suffix in (".svg", ".mmd", ".dot", ".json", ".txt"):
        assert draw(app, tmp_path / f"g{suffix}").stat().st_size > 50
    if DOT is not None:
        proc = subprocess.run([DOT, "-Tsvg"], input=to_dot(G).encode(), capture_output=True,
                              timeout=60, check=False)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr


def test_engine_graph_expands_subgraph() -> None:
    app = compiled_agent()
    H = expand_subgraphs(app.get_graph())
    assert "research" not in H
    assert H.nodes["research:lookup"]["cluster"] == ("research",)
    assert H.nodes["research:lookup"]["kind"] == "tool"
    assert set(H.successors("tools")) == {"research:lookup"}
    assert set(H.successors("research:rank")) == {"agent"}
    L = layout(H)
    assert_no_overlap(L)
    assert [c.path for c in L.clusters] == [("research",)]
    assert "subgraph cluster_research" in to_mermaid(H)
    assert 'subgraph "cluster_research"' in to_dot(H)


def test_engine_run_path_highlight() -> None:
    """Overlay the nodes a real run went through (the intended use of ``highlight``)."""
    app = compiled_agent()
    ran = [S]
    previous = S
    edges = set()
    for update in app.stream({"messages": []}, mode="updates"):
        for node in update:
            ran.append(node)
            edges.add((previous, node))
            previous = node
    assert "tools" in ran
    svg = to_svg(app, highlight=set(ran), highlight_edges=edges)
    root = ET.fromstring(svg)
    lit = {g.get("data-name") for g in root.iter(f"{SVG_NS}g") if g.get("class") == "node"
           and any(r.get("stroke") == "#f97316" for r in g.iter(f"{SVG_NS}path"))}
    assert lit == set(ran)
    text = to_ascii(app, highlight=set(ran))
    assert "┃ agent [agent] ┃" in text


def prebuilt_agent(checkpointer: Any = None) -> Any:
    from graphflow.tools import tool

    from graphflow import ToolCall
    from graphflow.agents import create_function_calling_agent
    from graphflow.models import ScriptedModel

    @tool
    def multiply(a: float, b: float) -> float:
        """Multiply two numbers."""
        return a * b

    model = ScriptedModel([[ToolCall(name="multiply", args={"a": 6, "b": 7})],
                           [ToolCall(name="multiply", args={"a": 42, "b": 2})], "84"])
    return create_function_calling_agent(model, [multiply], checkpointer=checkpointer)


def test_router_answers_label_conditional_edges_in_every_format() -> None:
    """``tools_condition`` is hinted ``Literal["tools", "__end__"]``: both edges say so."""
    app = prebuilt_agent()
    G = app.get_graph()
    assert {(v, d["label"]) for _, v, d in G.out_edges("agent", data=True)} == {
        ("tools", "tools"), (E, "__end__")}
    texts = {t.text for t in ET.fromstring(app.to_svg()).iter(f"{SVG_NS}text")}
    assert {"tools", "__end__"} <= texts
    assert 'agent -.->|"tools"| tools' in app.to_mermaid()
    assert 'agent -.->|"__end__"| __end__' in app.to_mermaid()
    dot = app.to_dot()
    assert 'label=" tools "' in dot and 'label=" __end__ "' in dot
    text = app.to_ascii()
    assert "[tools]" in text and "[__end__]" in text
    labels = {e.label for e in layout(G).edges}  # what the PNG draws, from the same scene
    assert {"tools", "__end__"} <= labels


def test_send_fan_out_is_drawn_as_a_fan_out_with_its_count() -> None:
    import runpy

    app = runpy.run_path(str(Path(__file__).parent.parent / "examples" / "quickstart.py"),
                         run_name="quickstart")["app"]
    assert app.get_graph().edges["plan", "research", 0]["kind"] == "send"
    app.invoke({"topic": "graphs", "drafts": 0}, thread="t")
    root = ET.fromstring(app.to_svg(run="t"))
    fan = next(g for g in root.iter(f"{SVG_NS}g") if g.get("data-name") ==
               "plan -> research (send)")
    assert [t.text for t in fan.iter(f"{SVG_NS}text")] == ["\u00d73"]  # three Sends
    # the edge, then three prongs into the target, each with an arrowhead
    assert len(fan.findall(f"{SVG_NS}path")) == 4 and len(fan.findall(f"{SVG_NS}polygon")) == 3
    legend = next(g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "legend")
    assert "send" in [t.text for t in legend.iter(f"{SVG_NS}text")]
    assert 'plan -->|"Send \u00d73"| research' in app.to_mermaid(run="t")
    assert 'arrowhead="normalcrow"' in app.to_dot()
    if DOT is not None:
        proc = subprocess.run([DOT, "-Tsvg"], input=app.to_dot(run="t").encode(),
                              capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
    assert "plan ──⋙ research" in app.to_ascii()


def test_jupyter_gets_a_png_beside_the_svg() -> None:
    import base64

    pytest.importorskip("PIL")
    app = compiled_agent()
    bundle = app._repr_mimebundle_()
    assert bundle["text/plain"] == repr(app)
    ET.fromstring(bundle["image/svg+xml"])
    png = read_png(base64.b64decode(bundle["image/png"]))
    assert png.width > 100
    only_png = app._repr_mimebundle_(include={"image/png"})
    assert "image/svg+xml" not in only_png and "image/png" in only_png
    assert "image/png" not in app._repr_mimebundle_(exclude={"image/png"})
