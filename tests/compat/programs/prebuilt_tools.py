# Tools with LangChain's @tool, LangGraph's prebuilt ToolNode and tools_condition, around a
# scripted "model" node (a conversation of tool calls), with InMemorySaver and a thread.
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"It is sunny in {city}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def scripted_model(state: MessagesState):
    last = state["messages"][-1]
    if isinstance(last, HumanMessage):
        return {"messages": [AIMessage(content="", tool_calls=[
            {"name": "get_weather", "args": {"city": "Paris"}, "id": "w1"},
            {"name": "add", "args": {"a": 2, "b": 3}, "id": "a1"}])]}
    results = [m.content for m in state["messages"] if isinstance(m, ToolMessage)]
    return {"messages": [AIMessage(content=" | ".join(results))]}


builder = StateGraph(MessagesState)
builder.add_node("model", scripted_model)
builder.add_node("tools", ToolNode([get_weather, add]))
builder.add_edge(START, "model")
builder.add_conditional_edges("model", tools_condition)
builder.add_edge("tools", "model")
graph = builder.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": "weather"}}
result = graph.invoke({"messages": [HumanMessage("Weather in Paris, and 2 + 3?")]}, config)
for message in result["messages"]:
    calls = getattr(message, "tool_calls", [])
    print(message.type, repr(message.content), [c["name"] for c in calls])
print([m.tool_call_id for m in result["messages"] if isinstance(m, ToolMessage)])
print(get_weather.invoke({"city": "Rome"}))
print(add.name, add.description)
print(graph.get_state(config).next)
for message in result["messages"]:
    message.pretty_print()
