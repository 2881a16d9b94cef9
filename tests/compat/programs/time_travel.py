# Time travel: replay from a checkpoint in the history, fork with update_state.
import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    topic: str
    joke: str
    log: Annotated[list[str], operator.add]


def generate_topic(state: State):
    return {"topic": "socks in the dryer", "log": ["topic"]}


def write_joke(state: State):
    return {"joke": f"Why do {state['topic']} disappear?", "log": ["joke"]}


workflow = StateGraph(State)
workflow.add_node("generate_topic", generate_topic)
workflow.add_node("write_joke", write_joke)
workflow.add_edge(START, "generate_topic")
workflow.add_edge("generate_topic", "write_joke")
workflow.add_edge("write_joke", END)
graph = workflow.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": "t1"}}
state = graph.invoke({"topic": "", "joke": "", "log": []}, config)
print(state["joke"])
states = list(graph.get_state_history(config))
for s in states:
    print(s.next, s.values.get("log"))
selected_state = states[1]
print(selected_state.next)
print(selected_state.values)
new_config = graph.update_state(selected_state.config, values={"topic": "chickens"})
print(graph.invoke(None, new_config)["joke"])
first = states[-1]
print(first.next)
print(graph.invoke(None, first.config)["log"])
