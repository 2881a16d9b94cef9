# Human in the loop: interrupt() inside a node, Command(resume=...), __interrupt__ in the result.
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class State(TypedDict):
    some_text: str
    approved: bool


def human_node(state: State):
    value = interrupt({"text_to_revise": state["some_text"]})
    return {"some_text": value}


def approve(state: State):
    ok = interrupt("approve?")
    return {"approved": ok == "yes"}


graph_builder = StateGraph(State)
graph_builder.add_node("human_node", human_node)
graph_builder.add_node("approve", approve)
graph_builder.add_edge(START, "human_node")
graph_builder.add_edge("human_node", "approve")
graph_builder.add_edge("approve", END)
graph = graph_builder.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": "some_id"}}
result = graph.invoke({"some_text": "original text", "approved": False}, config=config)
print(result["__interrupt__"][0].value)
print(graph.get_state(config).next)
print(graph.get_state(config).tasks[0].name)
result = graph.invoke(Command(resume="Edited text"), config=config)
print(result["__interrupt__"][0].value)
print(result["some_text"])
print(graph.invoke(Command(resume="yes"), config=config))
for chunk in graph.stream({"some_text": "t2", "approved": False},
                          {"configurable": {"thread_id": "2"}}, stream_mode="updates"):
    print(list(chunk))
