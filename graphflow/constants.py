"""Reserved node names."""

START = "__start__"
"""The virtual node a run starts from: ``add_edge(START, "first")``."""

END = "__end__"
"""The virtual node a run ends at: ``add_edge("last", END)``."""

RESERVED = frozenset({START, END})
