"""The public surface of graphflow: exported names, constants, error hierarchy, packaging.

Written against docs/semantics.md ("Public names", "Errors").
"""

import importlib
import importlib.metadata
import json
import subprocess
import sys
from typing import Literal

import pytest

import graphflow

EXPECTED_ALL = [
    "AIMessage",
    "AnyMessage",
    "CachePolicy",
    "Command",
    "END",
    "GraphRecursionError",
    "GraphValidationError",
    "GraphValidationWarning",
    "GraphflowError",
    "HumanMessage",
    "Interrupt",
    "InvalidThreadIdError",
    "InvalidUpdateError",
    "IsLastStep",
    "MessagesState",
    "NodeError",
    "NodeTimeoutError",
    "RemainingSteps",
    "RemoveMessage",
    "RetryPolicy",
    "RunCancelledError",
    "RunContext",
    "RunnableConfig",
    "Runtime",
    "START",
    "Send",
    "SignalTimeoutError",
    "StateGraph",
    "SystemMessage",
    "ThreadBusyError",
    "TokenBudgetExceeded",
    "ToolCall",
    "ToolMessage",
    "add_messages",
    "get_config",
    "get_stream_writer",
    "interrupt",
]


def test_expected_list_is_itself_sorted():
    # Guards this test file: the contract says the list is sorted.
    assert sorted(EXPECTED_ALL) == EXPECTED_ALL


def test_dunder_all_is_exactly_the_contract_list():
    assert list(graphflow.__all__) == EXPECTED_ALL


def test_dunder_all_has_no_duplicates():
    assert len(set(graphflow.__all__)) == len(graphflow.__all__)


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_is_an_attribute(name):
    assert getattr(graphflow, name, None) is not None, name


def test_star_import_gives_exactly_the_public_names():
    namespace: dict = {}
    exec("from graphflow import *", namespace)
    namespace.pop("__builtins__", None)
    assert sorted(namespace) == EXPECTED_ALL


def test_start_and_end_values():
    from graphflow import END, START

    assert START == "__start__"
    assert END == "__end__"
    assert isinstance(START, str)
    assert isinstance(END, str)


def test_graphflow_error_is_an_exception():
    from graphflow import GraphflowError

    assert issubclass(GraphflowError, Exception)


@pytest.mark.parametrize(
    ("name", "bases"),
    [
        ("GraphValidationError", ("GraphflowError", ValueError)),
        ("InvalidUpdateError", ("GraphflowError", ValueError)),
        ("GraphRecursionError", ("GraphflowError", RecursionError)),
        ("NodeError", ("GraphflowError",)),
        ("NodeTimeoutError", ("GraphflowError", TimeoutError)),
        ("RunCancelledError", ("GraphflowError",)),
    ],
)
def test_error_hierarchy(name, bases):
    exc = getattr(graphflow, name)
    for base in bases:
        base_cls = getattr(graphflow, base) if isinstance(base, str) else base
        assert issubclass(exc, base_cls), f"{name} should subclass {base_cls.__name__}"


def test_error_classes_are_distinct():
    names = [
        "GraphflowError",
        "GraphValidationError",
        "InvalidUpdateError",
        "GraphRecursionError",
        "NodeError",
        "NodeTimeoutError",
    ]
    classes = [getattr(graphflow, n) for n in names]
    assert len(set(classes)) == len(classes)
    # Siblings are not subclasses of one another.
    from graphflow import GraphValidationError, InvalidUpdateError, NodeError, NodeTimeoutError

    assert not issubclass(InvalidUpdateError, GraphValidationError)
    assert not issubclass(GraphValidationError, InvalidUpdateError)
    assert not issubclass(NodeTimeoutError, NodeError)


def test_graph_validation_warning_is_a_user_warning():
    from graphflow import GraphValidationWarning

    assert issubclass(GraphValidationWarning, UserWarning)


def test_errors_live_in_graphflow_errors_module():
    errors = importlib.import_module("graphflow.errors")
    for name in [
        "GraphflowError",
        "GraphValidationError",
        "InvalidUpdateError",
        "GraphRecursionError",
        "NodeError",
        "NodeTimeoutError",
        "GraphValidationWarning",
    ]:
        assert getattr(errors, name) is getattr(graphflow, name), name


def test_retry_policy_defaults():
    from graphflow import RetryPolicy

    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert policy.initial_interval == 0.5
    assert policy.backoff_factor == 2.0
    assert policy.max_interval == 128.0
    assert policy.jitter is True
    assert policy.retry_on is Exception


def test_retry_policy_accepts_keywords():
    from graphflow import RetryPolicy

    policy = RetryPolicy(max_attempts=5, retry_on=(KeyError, ValueError), jitter=False)
    assert policy.max_attempts == 5
    assert policy.jitter is False


def test_send_carries_its_arg():
    from graphflow import Send

    payload = {"x": 1}
    send = Send("worker", payload)
    assert send.arg == payload


def test_command_accepts_update_and_goto_and_is_subscriptable():
    from graphflow import Command

    Command(update={"x": 1}, goto="b")
    Command(goto=["a", "b"])
    Command(update={"x": 1})
    # Used as a return hint: Command[Literal[...]] must be valid at runtime.
    hint = Command[Literal["a", "b"]]
    assert hint is not None


def test_command_parent_is_a_constant_and_graph_a_field():
    from graphflow import Command

    assert Command.PARENT == "__parent__"
    c = Command(graph=Command.PARENT, goto="agent", update={"x": 1})
    assert (c.graph, c.goto, c.update) == ("__parent__", "agent", {"x": 1})
    assert Command().graph is None


AGENTS_ALL = [
    "Agent", "AgentEvent", "AgentResult", "AgentState", "BranchFailedError", "BranchResult",
    "ErrorEvent", "FunctionCallingNode", "GroupChatState", "HandoffEvent", "HierarchyState",
    "JudgeVerdict", "LLMJudge", "LLMSelector", "Memory", "ParallelState", "PipelineState",
    "Plan", "PlanTask", "PlanValidationError", "ReActNode", "ResponseEvent", "Stage",
    "StageFailure", "SupervisorState", "SwarmState", "TaskResult", "ThinkingEvent",
    "ToolCallEvent", "ToolNode", "ToolResultEvent", "Vote", "add_usage", "collect",
    "create_function_calling_agent", "create_group_chat", "create_hierarchical_orchestrator",
    "create_parallel_orchestrator", "create_pipeline", "create_react_agent",
    "create_supervisor", "create_swarm", "handoff_tool", "llm_judge", "llm_router",
    "llm_selector", "majority_vote", "normalize_answer", "tools_condition", "total_usage",
    "validate_plan",
]


def test_agents_package_exports_exactly_its_names():
    agents = importlib.import_module("graphflow.agents")
    assert sorted(AGENTS_ALL) == AGENTS_ALL
    assert agents.__all__ == AGENTS_ALL
    for name in AGENTS_ALL:
        assert getattr(agents, name, None) is not None, name


def test_checkpoint_package_exports():
    checkpoint = importlib.import_module("graphflow.checkpoint")
    for name in ["Checkpointer", "MemoryCheckpointer", "Checkpoint", "StateSnapshot"]:
        assert getattr(checkpoint, name, None) is not None, name


def test_graphflow_tools_and_memory_import():
    tools = importlib.import_module("graphflow.tools")
    memory = importlib.import_module("graphflow.memory")
    assert tools.__name__ == "graphflow.tools"
    assert memory.__name__ == "graphflow.memory"


MEMORY_PUBLIC = [
    "BaseStore",
    "ConversationMemory",
    "Embeddings",
    "Episode",
    "EpisodicMemory",
    "FunctionEmbeddings",
    "HybridMemory",
    "Item",
    "KeepPinned",
    "KeywordIndex",
    "MemoryDecision",
    "MemoryExtractor",
    "MemoryHit",
    "MiniLMEmbeddings",
    "OpenAIEmbeddings",
    "PostgresStore",
    "Prepares",
    "RecallNode",
    "RememberNode",
    "Searchable",
    "Session",
    "SessionManager",
    "SlidingWindow",
    "SqliteStore",
    "StoreMemory",
    "SummarizeOld",
    "VectorMemory",
    "as_embeddings",
    "memory_tools",
    "split_text",
    "trim_messages",
]


def test_memory_exports_exactly_its_contract_and_each_name_resolves():
    memory = importlib.import_module("graphflow.memory")
    assert memory.__all__ == sorted(MEMORY_PUBLIC) == MEMORY_PUBLIC
    for name in MEMORY_PUBLIC:
        assert getattr(memory, name) is not None, name


def run_isolated(code, cwd):
    """Run ``code`` in a fresh isolated interpreter (no PYTHONPATH, cwd not on sys.path).

    Running outside the repository matters: from the repo root, importlib.metadata would find
    the source tree's ``graphflow.egg-info`` (whose SOURCES.txt lists source paths) instead of
    the installed distribution.
    """
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_distribution_ships_no_top_level_tools_or_memory(tmp_path):
    code = (
        "import importlib.metadata, json\n"
        "dist = importlib.metadata.distribution('graphflow')\n"
        "files = [str(f).replace('\\\\', '/') for f in (dist.files or [])]\n"
        "print(json.dumps({'files': files, 'top_level': dist.read_text('top_level.txt')}))"
    )
    info = run_isolated(code, tmp_path)
    offending = [f for f in info["files"] if f.startswith(("tools/", "memory/"))]
    assert offending == []
    if info["top_level"] is not None:
        assert set(info["top_level"].split()) <= {"graphflow"}


def test_bare_tools_and_memory_are_not_importable_outside_the_repo(tmp_path):
    # Works for both a regular and an editable install: run a fresh interpreter whose cwd is
    # not the repository root, in isolated mode (no PYTHONPATH, no cwd on sys.path).
    code = (
        "import importlib.util, json\n"
        "import graphflow.tools, graphflow.memory\n"
        "print(json.dumps({n: importlib.util.find_spec(n) is None for n in ('tools', 'memory')}))"
    )
    assert run_isolated(code, tmp_path) == {"tools": True, "memory": True}


MODELS_ALL = [
    "AnthropicChat",
    "ChatModel",
    "CircuitBreaker",
    "CircuitOpenError",
    "MissingAPIKeyError",
    "OpenAIChat",
    "RetryConfig",
    "ScriptedModel",
    "StructuredOutputError",
    "chat_model",
    "count_tokens",
    "is_retryable",
]


def test_models_package_exports_the_resilience_names_and_count_tokens():
    models = importlib.import_module("graphflow.models")
    assert list(models.__all__) == MODELS_ALL == sorted(MODELS_ALL)
    from graphflow.models.resilience import CircuitBreaker, RetryConfig
    from graphflow.models.tokens import count_tokens

    assert models.CircuitBreaker is CircuitBreaker and models.RetryConfig is RetryConfig
    assert models.count_tokens is count_tokens
    for name in MODELS_ALL:
        assert getattr(models, name, None) is not None, name


def test_serve_and_tracing_public_names():
    serve = importlib.import_module("graphflow.serve")
    assert serve.__all__ == sorted(serve.__all__) == [
        "ApiError", "RunExecutor", "RunJob", "ServeConfig", "ThreadRunExecutor", "create_app"]
    tracing = importlib.import_module("graphflow.tracing")
    assert tracing.__all__ == ["configure", "disable", "enable", "enabled"]
    if importlib.util.find_spec("fastapi") is not None:
        for name in serve.__all__:
            assert getattr(serve, name) is not None


def test_serve_without_its_extra_names_the_extra():
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "import graphflow.serve as s\n"
            "try:\n    s.create_app\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "graphflow[serve]"' in out.stdout
