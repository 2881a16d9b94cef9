# Semantics a porting user relies on: configurable values read by nodes, exceptions reaching the
# caller as themselves, the recursion limit count, key order, with_config, a subgraph compiled
# with checkpointer=True, values streamed when resuming.
import operator
from typing import Annotated

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict):
    a: str
    b: Annotated[list[str], operator.add]
    c: int


def read_config(state: State, config: RunnableConfig):
    return {"a": f"user={config['configurable']['user_id']}", "c": 1}


g = StateGraph(State)
g.add_node("read_config", read_config)
g.add_edge(START, "read_config")
g.add_edge("read_config", END)
app = g.compile(checkpointer=InMemorySaver())
out = app.invoke({"c": 0, "b": ["x"]}, {"configurable": {"thread_id": "s1", "user_id": "u7"}})
print(out)
print(list(out))
print(list(app.get_state({"configurable": {"thread_id": "s1"}}).values))


def fails(state: State):
    return {"a": {"x": 1}["missing"]}


f = StateGraph(State)
f.add_node("fails", fails)
f.add_edge(START, "fails")
f.add_edge("fails", END)
try:
    f.compile().invoke({"a": "", "b": [], "c": 0})
except KeyError as exc:
    print("KeyError", exc)


def step(state: State):
    return {"c": state["c"] + 1}


def again(state: State):
    return "step" if state["c"] < 100 else END


loop = StateGraph(State)
loop.add_node("step", step)
loop.add_edge(START, "step")
loop.add_conditional_edges("step", again, ["step", END])
for limit in (3, 4, 5):
    try:
        print(limit, loop.compile().invoke({"a": "", "b": [], "c": 97}, {"recursion_limit": limit}))
    except GraphRecursionError:
        print(limit, "GraphRecursionError")

named = loop.compile().with_config({"recursion_limit": 50}, run_name="looper")
print(named.invoke({"a": "", "b": [], "c": 90})["c"])


class Sub(TypedDict):
    b: Annotated[list[str], operator.add]


def ask(state: Sub):
    return {"b": [interrupt("sub question")]}


sb = StateGraph(Sub)
sb.add_node("ask", ask)
sb.add_edge(START, "ask")
sub = sb.compile(checkpointer=True)
p = StateGraph(State)
p.add_node("sub", sub)
p.add_edge(START, "sub")
p.add_edge("sub", END)
papp = p.compile(checkpointer=InMemorySaver())
cfg = {"configurable": {"thread_id": "p1"}}
print(papp.invoke({"a": "", "b": [], "c": 0}, cfg)["__interrupt__"][0].value)
from langgraph.types import Command  # noqa: E402

for chunk in papp.stream(Command(resume="answer"), cfg, stream_mode="values"):
    print(chunk)
