# More streaming: custom data from get_stream_writer, several modes at once, a step that writes
# nothing, resuming with stream(None) after a breakpoint, and subgraphs=True with a list of modes.
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    text: str
    done: bool


def progress(state: State):
    writer = get_stream_writer()
    for pct in (50, 100):
        writer({"progress": pct})
    return {"text": state["text"].upper()}


def check(state: State):
    return None  # looks, writes nothing


def finish(state: State):
    return {"done": True}


builder = StateGraph(State)
builder.add_node("progress", progress)
builder.add_node("check", check)
builder.add_node("finish", finish)
builder.add_edge(START, "progress")
builder.add_edge("progress", "check")
builder.add_edge("check", "finish")
builder.add_edge("finish", END)
graph = builder.compile()

for mode, chunk in graph.stream({"text": "hi", "done": False},
                                stream_mode=["updates", "custom", "values"]):
    print(mode, chunk)

paused = builder.compile(checkpointer=InMemorySaver(), interrupt_before=["finish"])
config = {"configurable": {"thread_id": "p"}}
for chunk in paused.stream({"text": "yo", "done": False}, config, stream_mode="values"):
    print("first", chunk)
print(paused.get_state(config).next)
for chunk in paused.stream(None, config, stream_mode="values"):
    print("resumed", chunk)


class Inner(TypedDict):
    text: str


def shout(state: Inner):
    return {"text": state["text"] + "!"}


inner = StateGraph(Inner)
inner.add_node("shout", shout)
inner.add_edge(START, "shout")
inner.add_edge("shout", END)

outer = StateGraph(State)
outer.add_node("inner", inner.compile())
outer.add_node("finish", finish)
outer.add_edge(START, "inner")
outer.add_edge("inner", "finish")
outer.add_edge("finish", END)
nested = outer.compile()
for ns, mode, chunk in nested.stream({"text": "hey", "done": False},
                                     stream_mode=["updates", "values"], subgraphs=True):
    print([part.split(":")[0] for part in ns], mode, chunk)
