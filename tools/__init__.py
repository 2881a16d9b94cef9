"""graphflow.tools — functions a model can call.

``@tool`` turns a typed, documented function into a :class:`Tool`: a JSON schema of its
arguments (from the type hints and the Google-style docstring), OpenAI/Anthropic tool formats,
and ``invoke``/``ainvoke`` that validate the model's arguments, inject the graph state / run
context / store, ask a human first when ``confirm=True``, and enforce a ``timeout``::

    from graphflow.tools import tool

    @tool
    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''Current weather in a city.

        Args:
            city: the city's name.
            unit: temperature unit.
        '''
        ...

    get_weather.to_openai()
    get_weather.invoke({"city": "Paris"})

Safe built-in tools live in :mod:`graphflow.tools.builtin` (calculator, files confined to a
root, HTTP GET with a host allow-list, read-only SQLite queries).
"""

from .base import (
    Tool,
    ToolArgumentError,
    ToolConfirmationError,
    ToolRejected,
    ToolTimeoutError,
    tool,
)
from .schema import InjectedState, InjectedStore, ToolDefinitionError, parse_docstring

__all__ = [
    "InjectedState",
    "InjectedStore",
    "Tool",
    "ToolArgumentError",
    "ToolConfirmationError",
    "ToolDefinitionError",
    "ToolRejected",
    "ToolTimeoutError",
    "parse_docstring",
    "tool",
]
