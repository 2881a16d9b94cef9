"""Smoke benchmark: what ``OpenAIChat.invoke`` costs on top of the bare ``openai`` SDK.

Not part of ``run.py`` nor of the test suite. Against a local ``OpenAIServer`` (127.0.0.1, no
network), it times N calls of a bare ``openai.OpenAI().chat.completions.create`` and N calls of
``OpenAIChat.invoke`` (message conversion, tool-call repair, retries/breaker bookkeeping,
conversion of the answer to an ``AIMessage``), interleaved so drift hits both alike, and prints
the medians and the overhead in percent::

    .venv/bin/python bench/llm_overhead.py [N]      # default N = 200
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

import openai

from graphflow.models.openai_chat import OpenAIChat
from graphflow.testing.llm_servers import OpenAIServer, Reply

MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello."}]


def main(n: int = 200) -> dict[str, float]:
    reply = Reply("Hello! How can I help you today?", usage=(20, 9))
    with OpenAIServer(default=reply) as server:
        bare = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
        model = OpenAIChat("gpt-4o-mini", api_key="bench", base_url=server.base_url)

        def call_bare() -> None:
            resp = bare.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert resp.choices[0].message.content

        def call_model() -> None:
            assert model.invoke(MESSAGES).content

        for _ in range(20):  # warm up connections, imports, caches
            call_bare()
            call_model()
        gc.collect()
        t_bare: list[float] = []
        t_model: list[float] = []
        for _ in range(n):
            for fn, times in ((call_bare, t_bare), (call_model, t_model)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
        bare.close()
        model.close()
    bare_us = statistics.median(t_bare) * 1e6
    model_us = statistics.median(t_model) * 1e6
    return {"n": n, "bare_sdk_us": round(bare_us, 1), "openaichat_us": round(model_us, 1),
            "overhead_us": round(model_us - bare_us, 1),
            "overhead_pct": round(100 * (model_us - bare_us) / bare_us, 1)}


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    print(f"median of {result['n']} calls against a local OpenAI-compatible server:")
    print(f"  bare openai SDK   {result['bare_sdk_us']:9.1f} us")
    print(f"  OpenAIChat.invoke {result['openaichat_us']:9.1f} us")
    print(f"  overhead          {result['overhead_us']:9.1f} us = {result['overhead_pct']:.1f} %")
