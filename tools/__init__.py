"""graphflow.tools — the @tool decorator and built-in tools (arrives with the LLM issue)."""
