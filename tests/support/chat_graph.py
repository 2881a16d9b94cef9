"""A one-node chat graph around a model, shared by the model tests."""

from typing import Annotated, TypedDict

from graphflow import END, START, StateGraph, add_messages


class Chat(TypedDict):
    messages: Annotated[list, add_messages]


def one_node_graph(model, *, fail_once=None, saver=None):
    """START -> agent -> END, where agent asks ``model`` and appends its answer; with
    ``fail_once={"done": False}`` the node raises once, after the model answered."""

    def agent(state):
        answer = model.invoke(state["messages"])
        if fail_once is not None and not fail_once["done"]:
            fail_once["done"] = True
            raise RuntimeError("crashed after the model answered")
        return {"messages": [answer]}

    g = StateGraph(Chat)
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    return g.compile(checkpointer=saver)
