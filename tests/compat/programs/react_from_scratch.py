# A ReAct agent from scratch with MessagesState, messages from langchain_core, a scripted "model"
# that returns tool calls, a tool node reading call["name"] / call["args"], a conditional edge.
import json

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph

TOOLS = {"multiply": lambda a, b: a * b, "add": lambda a, b: a + b}
SCRIPT = [
    AIMessage(content="", tool_calls=[{"name": "multiply", "args": {"a": 6, "b": 7},
                                       "id": "call_1"}]),
    AIMessage(content="", tool_calls=[{"name": "add", "args": {"a": 42, "b": 1},
                                       "id": "call_2"}]),
    AIMessage(content="The answer is 43."),
]


def call_model(state: MessagesState):
    turn = sum(1 for m in state["messages"] if isinstance(m, AIMessage))
    return {"messages": [SCRIPT[turn]]}


def tool_node(state: MessagesState):
    outputs = []
    for call in state["messages"][-1].tool_calls:
        result = TOOLS[call["name"]](**call["args"])
        outputs.append(ToolMessage(content=json.dumps(result), name=call["name"],
                                   tool_call_id=call["id"]))
    return {"messages": outputs}


def should_continue(state: MessagesState):
    last = state["messages"][-1]
    return "tools" if last.tool_calls else END


workflow = StateGraph(MessagesState)
workflow.add_node("agent", call_model)
workflow.add_node("tools", tool_node)
workflow.add_edge(START, "agent")
workflow.add_conditional_edges("agent", should_continue, ["tools", END])
workflow.add_edge("tools", "agent")
app = workflow.compile()

result = app.invoke({"messages": [SystemMessage("You are a calculator."),
                                  HumanMessage("What is 6 x 7 + 1?")]})
for m in result["messages"]:
    print(m.type, repr(m.content), [(c["name"], c["args"]) for c in getattr(m, "tool_calls", [])])
print(result["messages"][-1].content)
print(len(result["messages"]))
