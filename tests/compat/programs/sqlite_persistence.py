# Persistence in SQLite: SqliteSaver on a sqlite3 connection to a file (a second saver on the
# same file, as after a restart, resumes an interrupted thread) and from_conn_string(":memory:").
import operator
import os
import sqlite3
import tempfile
from typing import Annotated

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class State(TypedDict):
    question: str
    answers: Annotated[list[str], operator.add]


def ask(state: State):
    answer = interrupt(f"answer: {state['question']}")
    return {"answers": [answer]}


def echo(state: State):
    return {"answers": [f"echo {state['answers'][-1]}"]}


builder = StateGraph(State)
builder.add_node("ask", ask)
builder.add_node("echo", echo)
builder.add_edge(START, "ask")
builder.add_edge("ask", "echo")
builder.add_edge("echo", END)

path = os.path.join(tempfile.mkdtemp(), "checkpoints.sqlite")
conn = sqlite3.connect(path, check_same_thread=False)
graph = builder.compile(checkpointer=SqliteSaver(conn))
config = {"configurable": {"thread_id": "7"}}
print(graph.invoke({"question": "why?", "answers": []}, config)["__interrupt__"][0].value)
print(graph.get_state(config).next)

# a new process would open the file again: a second saver on the same file resumes the thread
again = builder.compile(checkpointer=SqliteSaver(sqlite3.connect(path, check_same_thread=False)))
print(again.get_state(config).values)
print(again.invoke(Command(resume="because"), config))
history = list(again.get_state_history(config))
print(len(history), [h.next for h in history])
print(again.get_state({"configurable": {"thread_id": "7"}}).values["answers"])

with SqliteSaver.from_conn_string(":memory:") as checkpointer:
    memory_graph = builder.compile(checkpointer=checkpointer)
    cfg = {"configurable": {"thread_id": "m"}}
    memory_graph.invoke({"question": "q", "answers": []}, cfg)
    print(memory_graph.invoke(Command(resume="a"), cfg)["answers"])
    forked = memory_graph.update_state(cfg, {"answers": ["extra"]})
    print(sorted(forked["configurable"]))
    print(memory_graph.get_state(cfg).values["answers"])
