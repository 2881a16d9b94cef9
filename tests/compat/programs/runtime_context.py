# context_schema and Runtime: invoke(..., context={...}) handed to nodes as runtime.context.
from dataclasses import dataclass

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict


@dataclass
class Context:
    user_name: str
    greeting: str = "Hello"


class State(TypedDict):
    message: str


def greet(state: State, runtime: Runtime[Context]):
    return {"message": f"{runtime.context.greeting}, {runtime.context.user_name}: "
                       f"{state['message']}"}


builder = StateGraph(State, context_schema=Context)
builder.add_node("greet", greet)
builder.add_edge(START, "greet")
builder.add_edge("greet", END)
graph = builder.compile()
print(graph.invoke({"message": "welcome"}, context={"user_name": "Ada"}))
print(graph.invoke({"message": "hi"}, context=Context(user_name="Bob", greeting="Hey")))
