"""The ReAct reply parser and the lenient JSON reader: what models actually write."""

import contextlib

import pytest

from graphflow.agents.react_parser import (
    ReActAction,
    ReActError,
    ReActFinal,
    loads_lenient,
    parse_action_input,
    parse_react,
)

TOOLS = {
    "calculator": {"type": "object", "properties": {"expression": {"type": "string"}},
                   "required": ["expression"]},
    "get_weather": {"type": "object", "properties": {"city": {"type": "string"},
                                                     "unit": {"type": "string"}}},
    "lookup": {"type": "object", "properties": {"id": {"type": "integer"}}},
    "now": {"type": "object", "properties": {}},
}


def action(tool, **args):
    return tool, args


@pytest.mark.parametrize("text, expected", [
    # the canonical format
    ('Thought: math\nAction: calculator\nAction Input: {"expression": "2+2"}',
     action("calculator", expression="2+2")),
    # case and spacing of labels and tool names
    ("thought: x\naction : Calculator\naction input: {\"expression\": \"1\"}",
     action("calculator", expression="1")),
    ("THOUGHT: X\nACTION: GET-WEATHER\nACTION_INPUT: {\"city\": \"Rome\"}",
     action("get_weather", city="Rome")),
    ("   Action:   get_weather   \n   Action Input:   {\"city\":\"Oslo\"}   ",
     action("get_weather", city="Oslo")),
    ("Action:get_weather\nActionInput:{\"city\":\"Lima\"}", action("get_weather", city="Lima")),
    # markdown decoration
    ("**Thought:** hm\n**Action:** `get_weather`\n**Action Input:** {\"city\": \"Bern\"}",
     action("get_weather", city="Bern")),
    ("- Action: get_weather\n- Action Input: {\"city\": \"Kyiv\"}",
     action("get_weather", city="Kyiv")),
    # JSON repairs: single quotes, trailing commas, unquoted keys, Python literals, comments
    ("Action: get_weather\nAction Input: {'city': 'Paris', 'unit': 'C',}",
     action("get_weather", city="Paris", unit="C")),
    ("Action: get_weather\nAction Input: {city: \"Paris\", unit: \"F\"}",
     action("get_weather", city="Paris", unit="F")),
    ("Action: lookup\nAction Input: {\"id\": 7, // the id\n}", action("lookup", id=7)),
    ("Action: get_weather\nAction Input: {\"city\": \"Paris\"", action("get_weather",
                                                                        city="Paris")),
    ("Action: get_weather\nAction Input: city=\"Paris\", unit=C",
     action("get_weather", city="Paris", unit="C")),
    ("Action: get_weather\nAction Input: {city: Paris}", action("get_weather", city="Paris")),
    # code fences
    ("Action: get_weather\nAction Input: ```json\n{\"city\": \"Rome\"}\n```",
     action("get_weather", city="Rome")),
    ("Action: get_weather\nAction Input:\n```\n{'city': 'Rome'}\n```",
     action("get_weather", city="Rome")),
    # a bare value for a single-argument tool
    ("Action: calculator\nAction Input: 2 + 2", action("calculator", expression="2 + 2")),
    ("Action: calculator\nAction Input: \"3 * 3\"", action("calculator", expression="3 * 3")),
    ("Action: calculator\nAction Input: 42", action("calculator", expression="42")),
    ("Action: lookup\nAction Input: 42", action("lookup", id=42)),
    ("Action: calculator\nAction Input: {\"expr\": \"1+1\"}",
     action("calculator", expression="1+1")),
    # the input written in the action line
    ("Action: calculator[2+2]", action("calculator", expression="2+2")),
    ("Action: calculator(7 * 6)", action("calculator", expression="7 * 6")),
    ("Action: calculator 5 - 1", action("calculator", expression="5 - 1")),
    ("Action: get_weather\n{\"city\": \"Quito\"}", action("get_weather", city="Quito")),
    # no input for a tool without arguments, or an empty one
    ("Thought: time?\nAction: now", action("now")),
    ("Action: now\nAction Input: {}", action("now")),
    ("Action: now\nAction Input: None", action("now")),
    # labels run together on one line
    ("Thought: hmm Action: get_weather Action Input: {\"city\": \"Paris\"}",
     action("get_weather", city="Paris")),
    # a made-up Observation and Final Answer after the action are ignored
    ("Action: calculator\nAction Input: 2+2\nObservation: 4\nThought: done\nFinal Answer: 4",
     action("calculator", expression="2+2")),
    # label-like words inside the JSON do not cut it
    ("Action: get_weather\nAction Input: {\"city\": \"Observation: Paris\"}",
     action("get_weather", city="Observation: Paris")),
    ("Action: get_weather\nAction Input: {\"city\": \"a\nAction: b\"}",
     action("get_weather", city="a\nAction: b")),
    # the tool name among other words
    ("Action: use the calculator please\nAction Input: 7", action("calculator",
                                                                  expression="7")),
    ("Action: \"get_weather\".\nAction Input: {\"city\": \"X\"}", action("get_weather",
                                                                           city="X")),
    # the JSON flavour of ReAct
    ('{"action": "calculator", "action_input": "5*5"}', action("calculator", expression="5*5")),
    ('```json\n{"action": "get_weather", "action_input": {"city": "Rome"}}\n```',
     action("get_weather", city="Rome")),
])
def test_actions(text, expected):
    step = parse_react(text, TOOLS)
    assert isinstance(step, ReActAction), step
    assert (step.tool, step.args) == expected


def test_thought_is_the_one_before_the_action():
    step = parse_react("Thought: first\nThought: second\nAction: now", TOOLS)
    assert step.thought == "second"


def test_action_input_without_action_is_fine_with_a_single_tool():
    step = parse_react("Thought: x\nAction Input: {\"expression\": \"1+1\"}",
                       {"calculator": TOOLS["calculator"]})
    assert step == ReActAction("calculator", {"expression": "1+1"}, "x")


@pytest.mark.parametrize("text, answer", [
    ("Final Answer: 42", "42"),
    ("Thought: I know\nFinal Answer:   Paris is the capital.  ", "Paris is the capital."),
    ("final answer: yes", "yes"),
    ("FINAL_ANSWER: multi\nline\nanswer", "multi\nline\nanswer"),
    ("**Final Answer:** done", "done"),
    ("The answer is 42.", "The answer is 42."),  # no labels: the whole reply is the answer
    ('{"action": "Final Answer", "action_input": "done"}', "done"),
    ("Action: Final Answer\nAction Input: \"it is 4\"", "it is 4"),
    ("Thought: done Final Answer: inline", "inline"),
    ("Final Answer: 4\nAction: calculator\nAction Input: 2+2", "4\nAction: calculator\n"
                                                                "Action Input: 2+2"),
])
def test_final_answers(text, answer):
    step = parse_react(text, TOOLS)
    assert isinstance(step, ReActFinal), step
    assert step.answer == answer


@pytest.mark.parametrize("text, fragments", [
    ("", ["empty"]),
    ("   \n ", ["empty"]),
    ("Thought: let me think about it", ["no 'Action:'", "Final Answer:"]),
    ("Final Answer:   ", ["'Final Answer:' was empty"]),
    ("Action: search\nAction Input: {\"q\": 1}",
     ["'search' is not a valid tool", "calculator, get_weather, lookup, now"]),
    ("Action:\nAction Input: {}", ["(nothing)", "Valid tools"]),
    ("Action: weather tool", ["'weather tool' is not a valid tool"]),
    ("Action Input: {\"city\": \"x\"}", ["no 'Action:'", "calculator, get_weather"]),
    ("Action: get_weather\nAction Input: 7", ["must be a JSON object", "city"]),
    ("Action: get_weather\nAction Input: Paris, France",
     ["could not read the Action Input", "'get_weather'", '{"city": "...", "unit": "..."}']),
])
def test_errors_explain_the_problem_to_the_model(text, fragments):
    step = parse_react(text, TOOLS)
    assert isinstance(step, ReActError), step
    for fragment in fragments:
        assert fragment in step.message


def test_unknown_tool_listing_without_any_tools():
    step = parse_react("Action: x\nAction Input: {}", [])
    assert isinstance(step, ReActError) and "there are no tools" in step.message


def test_tools_can_be_given_as_tool_objects_or_names():
    from graphflow.tools import tool

    @tool
    def shout(text: str) -> str:
        """Upper-case."""
        return text.upper()

    assert parse_react("Action: shout\nAction Input: hello", [shout]) == ReActAction(
        "shout", {"text": "hello"})
    step = parse_react("Action: shout\nAction Input: {\"text\": \"hi\"}", ["shout"])
    assert step == ReActAction("shout", {"text": "hi"})


@pytest.mark.parametrize("text, value", [
    ('{"a": 1}', {"a": 1}),
    ("{'a': 'x', 'b': [1, 2,],}", {"a": "x", "b": [1, 2]}),
    ("{a: True, b: None, c: false}", {"a": True, "b": None, "c": False}),
    ("```json\n{\"a\": 1}\n```", {"a": 1}),
    ("`{\"a\": 1}`", {"a": 1}),
    ("a=1, b='x'", {"a": 1, "b": "x"}),
    ("a: 1, b: two words", {"a": 1, "b": "two words"}),
    ('{"a": "unterminated', {"a": "unterminated"}),
    ("[1, 2", [1, 2]),
    ('{"a": {"b": [1, {"c": 2}', {"a": {"b": [1, {"c": 2}]}}),
    ("{\"a\": \"\\u00e9\\n\"}", {"a": "\u00e9\n"}),
    ("{\u201ccity\u201d: \u201cParis\u201d}", {"city": "Paris"}),
    ("/* note */ {\"a\": 1} # trailing", {"a": 1}),
    ("the input is {\"a\": 1} ok", {"a": 1}),
    ("{\"n\": -1.5e3, \"m\": 1_000}", {"n": -1500.0, "m": 1000}),
    ("{\"expr\": 2+2}", {"expr": "2+2"}),
    ("42", 42),
    ('"text"', "text"),
    ("nope", None),
    ("__import__('os').system('x')", None),  # never evaluated
    ("", None),
])
def test_loads_lenient(text, value):
    if value is None:
        with pytest.raises(ValueError):
            loads_lenient(text)
    else:
        assert loads_lenient(text) == value


def test_loads_lenient_refuses_absurd_nesting():
    with pytest.raises(ValueError, match="nested too deeply"):
        loads_lenient("[" * 10_000)


def test_parse_action_input_for_single_argument_tools():
    schema = {"calculator": TOOLS["calculator"]}
    assert parse_action_input("Paris: the capital", "calculator", schema) == {
        "expression": "Paris: the capital"}
    assert parse_action_input("'quoted'", "calculator", schema) == {"expression": "quoted"}
    assert parse_action_input(None, "calculator", schema) == {}
    with pytest.raises(ValueError, match="JSON object"):
        parse_action_input("hello world", "get_weather", TOOLS)


LABELS = ["Thought:", "Action:", "Action Input:", "Observation:", "Final Answer:",
          "action input:", "**Action:**", "{", "}", "[", "]", "'", '"', ",", ":", "=", "\n", " ",
          "```", "calculator", "get_weather", "now", "city", "2+2", "True", "//", "/*", "\\",
          "\u201c"]


def test_parser_never_raises_on_arbitrary_text():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.lists(st.one_of(st.sampled_from(LABELS), st.text(max_size=8)), max_size=30)

    @settings(max_examples=400, deadline=None)
    @given(pieces)
    def check(parts):
        text = "".join(parts)
        step = parse_react(text, TOOLS)
        assert isinstance(step, (ReActAction, ReActFinal, ReActError))
        if isinstance(step, ReActAction):
            assert step.tool in TOOLS and isinstance(step.args, dict)
        with contextlib.suppress(ValueError):
            loads_lenient(text)

    check()


# -- the fast reading of the canonical format agrees with the general one ----------------------

_THOUGHTS = ["", "one more", "*bold* idea", "`code` first", "use: a colon", "x Action: now",
             "I think Final Answer: 3", "Observation: fake", "  spaced  ", "_under_"]
_TOOLS = ["calculator", "get_weather", "lookup", "now", "Calculator", "nope", "get-weather"]
_INPUTS = ['{"expression": "2 + 2"}', '{"city": "Oslo", "unit": "C"}', '{"id": 3}', "{}",
           "{'id': 3}", '{"id": 3} {"id": 4}', '{"id": 3,}', '{"a": "Action: x"}',
           '{"expression": "Observation: 1"}', '{"id": "three"}', '{"city": "Nice"} trailing}']


@pytest.mark.parametrize("thought", _THOUGHTS)
@pytest.mark.parametrize("tool", _TOOLS)
@pytest.mark.parametrize("sep", [" ", "", " ** ", "\t"])
def test_the_canonical_fast_path_reads_replies_like_the_general_reader(thought, tool, sep):
    from graphflow.agents.react_parser import _read_labelled, _ToolInfo

    info = _ToolInfo(TOOLS)
    for raw in _INPUTS:
        text = f"Thought:{sep}{thought}\nAction:{sep}{tool}\nAction Input:{sep}{raw}".strip()
        assert parse_react(text, info) == _read_labelled(text, info), text
