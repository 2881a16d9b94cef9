# Memory across threads: a store given to compile(store=...), read and written by a node that
# declares `store: BaseStore` (and `config` for the user id).
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from typing_extensions import TypedDict


class State(TypedDict):
    fact: str
    known: list[str]


def remember(state: State, config: RunnableConfig, *, store: BaseStore):
    user = config["configurable"]["user_id"]
    namespace = ("memories", user)
    store.put(namespace, f"fact-{len(store.search(namespace))}", {"text": state["fact"]})
    return {"known": sorted(item.value["text"] for item in store.search(namespace))}


builder = StateGraph(State)
builder.add_node("remember", remember)
builder.add_edge(START, "remember")
builder.add_edge("remember", END)
store = InMemoryStore()
graph = builder.compile(checkpointer=InMemorySaver(), store=store)

print(graph.invoke({"fact": "likes tea", "known": []},
                   {"configurable": {"thread_id": "1", "user_id": "ada"}})["known"])
print(graph.invoke({"fact": "lives in Paris", "known": []},
                   {"configurable": {"thread_id": "2", "user_id": "ada"}})["known"])
print(graph.invoke({"fact": "likes coffee", "known": []},
                   {"configurable": {"thread_id": "3", "user_id": "bob"}})["known"])
item = store.get(("memories", "ada"), "fact-0")
print(item.key, item.namespace, item.value)
print(sorted(i.key for i in store.search(("memories",))))
print(store.list_namespaces(prefix=("memories",)))
