"""A calculator agent: a model that calls a safe calculator tool until it can answer.

Run: python examples/agent.py ["your question"]

Without an API key the model is a ScriptedModel (offline, deterministic): it is no language
model, so it answers from a script built from your question — the arithmetic it finds there
(``python examples/agent.py "what is 2+2"`` asks the calculator for ``2+2``), or, when it finds
none, a reply saying that it needs a real model. With ``OPENAI_API_KEY`` set the model is
``chat_model("openai:gpt-4o-mini")``; with ``ANTHROPIC_API_KEY`` (and no OpenAI key)
``chat_model("anthropic:claude-haiku-4-5")``. Tokens stream as they come;
tool calls and their results are printed as the tools finish. ``--react`` uses the ReAct text
protocol (``create_react_agent``) instead of native tool calling.
"""

import os
import re
import sys

from graphflow.tools.builtin import calculator

from graphflow import ToolCall
from graphflow.agents import create_function_calling_agent, create_react_agent
from graphflow.models import ScriptedModel, chat_model

QUESTION = "What is (12 + 30) * 2, and what is the square root of that?"
SYSTEM = "You are a careful assistant. Use the calculator for every computation."


def offline_model(react: bool, question: str = QUESTION) -> ScriptedModel:
    """What a model would answer to ``question``, scripted: QUESTION's answer, written out;
    for any other question, the calculator on the arithmetic found in it."""
    if question == QUESTION:
        return scripted_answer(react)
    expression = arithmetic_in(question)

    def reply(messages: list) -> object:
        results = [m.content for m in messages if m.type == "tool"] + [
            m.content.removeprefix("Observation:").strip() for m in messages
            if m.type == "human" and m.content.startswith("Observation:")]
        if expression is None:
            text = (f"(offline, scripted model) I found no arithmetic in {question!r}, and I "
                    f"can only compute: set OPENAI_API_KEY or ANTHROPIC_API_KEY for a real model.")
        elif results:
            text = f"{expression} = {results[-1]}"
        elif react:
            return (f"Thought: I will compute it.\nAction: calculator\n"
                    f"Action Input: {{\"expression\": \"{expression}\"}}")
        else:
            return [ToolCall(name="calculator", args={"expression": expression})]
        return f"Thought: I now know the final answer\nFinal Answer: {text}" if react else text

    return ScriptedModel(reply)


_FUNCTIONS = r"(?:sqrt|exp|log|sin|cos|tan|abs|round|floor|ceil)"
_ARITHMETIC = re.compile(rf"(?:\b{_FUNCTIONS}\b|\bpi\b|\d+(?:\.\d+)?|[-+*/%^()]|\s)+")


def arithmetic_in(question: str) -> str | None:
    """The longest run of arithmetic in ``question`` ("what is 2+2?" -> "2+2"), or None."""
    found = [m.group().strip() for m in _ARITHMETIC.finditer(question)]
    found = [f.replace("^", "**") for f in found
             if re.search(r"\d", f) and re.search(rf"[-+*/%^]|{_FUNCTIONS}", f)]
    return max(found, key=len, default=None)


def scripted_answer(react: bool) -> ScriptedModel:
    """QUESTION's answer, as a model would give it."""
    if react:
        return ScriptedModel([
            "Thought: first the product.\nAction: calculator\n"
            'Action Input: {"expression": "(12 + 30) * 2"}',
            "Thought: now its square root.\nAction: calculator\nAction Input: sqrt(84)",
            "Thought: I now know the final answer\nFinal Answer: (12 + 30) * 2 = 84, and the "
            "square root of 84 is about 9.165.",
        ])
    return ScriptedModel([
        [ToolCall(name="calculator", args={"expression": "(12 + 30) * 2"}),
         ToolCall(name="calculator", args={"expression": "sqrt((12 + 30) * 2)"})],
        "(12 + 30) * 2 = 84, and the square root of 84 is about 9.165.",
    ])


def pick_model(react: bool):
    if os.environ.get("OPENAI_API_KEY"):
        return chat_model("openai:gpt-4o-mini")
    if os.environ.get("ANTHROPIC_API_KEY"):
        return chat_model("anthropic:claude-haiku-4-5")
    return None


def build(model, react: bool = False):
    make = create_react_agent if react else create_function_calling_agent
    return make(model, [calculator], system=SYSTEM, max_iterations=8)


def main(argv: list[str]) -> str:
    react = "--react" in argv
    words = [a for a in argv if a != "--react"]
    question = " ".join(words) or QUESTION
    model = pick_model(react)
    if model is None:
        model = offline_model(react, question)
        print("(no OPENAI_API_KEY or ANTHROPIC_API_KEY: the model is a ScriptedModel, offline; "
              "it only computes the arithmetic it finds in the question)")
    app = build(model, react)
    print(f"model: {model.name}   agent: {'ReAct text' if react else 'function calling'}")
    print(f"user: {question}")
    answer, fresh_line = "", True
    for mode, event in app.stream({"messages": [("user", question)]},
                                  mode=["messages", "updates"]):
        if mode == "messages":
            chunk, _node = event
            if chunk.content and not react:  # ReAct tokens are Thought/Action text: not shown
                print("agent: " if fresh_line else "", chunk.content, sep="", end="",
                      flush=True)
                fresh_line = False
        elif "tools" in event:
            for result in event["tools"]["messages"]:
                print("" if fresh_line else "\n", f"  [tool {result.name} -> {result.content}]",
                      sep="", flush=True)
                fresh_line = True
        elif "agent" in event:
            answer = event["agent"]["messages"][-1].content
    print(f"agent: {answer}" if react else "")
    return answer


if __name__ == "__main__":
    main(sys.argv[1:])
