# Node caching with CachePolicy and InMemoryCache; get_graph() nodes and edges.

from langgraph.cache.memory import InMemoryCache
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy
from typing_extensions import TypedDict

CALLS = []


class State(TypedDict):
    x: int
    result: int


def expensive_node(state: State) -> dict:
    CALLS.append(state["x"])
    return {"result": state["x"] * 2}


builder = StateGraph(State)
builder.add_node("expensive_node", expensive_node, cache_policy=CachePolicy(ttl=120))
builder.add_edge(START, "expensive_node")
builder.add_edge("expensive_node", END)
graph = builder.compile(cache=InMemoryCache())
print(graph.invoke({"x": 5}))
print(graph.invoke({"x": 5}))
print(graph.invoke({"x": 6}))
print(CALLS)


def route(state: State):
    return "b" if state["x"] else END


g = StateGraph(State)
g.add_node("a", lambda s: {"x": 1})
g.add_node("b", lambda s: {"x": 0})
g.add_edge(START, "a")
g.add_conditional_edges("a", route, ["b", END])
g.add_edge("b", END)
drawable = g.compile().get_graph()
print(sorted(drawable.nodes))
print(sorted((e.source, e.target, e.conditional) for e in drawable.edges))
print(drawable.draw_mermaid().startswith("---") or "graph TD" in drawable.draw_mermaid())
