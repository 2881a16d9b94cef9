"""A hierarchical orchestrator for the crash-recovery proof: a manager plans two tasks (the
second needs the first), a researcher and a writer do them, the manager synthesizes. Every model
call is logged, per thread, in the table ``calls`` of ``CRASH_EFFECTS_DB``: a resumed run must
not pay again for a call that had finished."""

import dataclasses
import json
import os
import sqlite3

from graphflow.agents import Agent, create_hierarchical_orchestrator
from graphflow.engine.interrupts import SCOPE
from graphflow.models import ScriptedModel

PLAN = {"tasks": [
    {"id": "t1", "description": "find the facts", "assignee": "researcher", "depends_on": []},
    {"id": "t2", "description": "write it up", "assignee": "writer", "depends_on": ["t1"]},
]}


def logged(answer):
    """A scripted model's reply function that logs each call under the run's thread."""

    def reply(messages):
        run, _ = SCOPE.get()
        thread = (run.thread or "").split(":", 1)[0]
        prompt = "|".join(m.content for m in messages)
        with sqlite3.connect(os.environ["CRASH_EFFECTS_DB"]) as db:
            db.execute("CREATE TABLE IF NOT EXISTS calls (thread TEXT, prompt TEXT)")
            db.execute("INSERT INTO calls VALUES (?, ?)", (thread, prompt))
        return answer(messages)

    return reply


def manager_reply(messages):
    if "Results of the team" in messages[-1].content:
        return "Report: " + messages[-1].content.split("done:")[-1].strip()
    return json.dumps(PLAN)


def make(checkpointer):
    manager = ScriptedModel(logged(manager_reply))
    researcher = Agent("researcher", ScriptedModel(logged(lambda m: "the sky is blue")),
                       "You find facts.")
    writer = Agent("writer", ScriptedModel(logged(lambda m: "Essay: " + m[-1].content[-15:])),
                   "You write.")
    return create_hierarchical_orchestrator(manager, [researcher, writer],
                                            checkpointer=checkpointer, name="team")


def normalize(values):
    """The final state without message ids (random, so they differ between runs)."""

    def strip(value):
        if hasattr(value, "model_dump"):
            value = value.model_dump()
        elif dataclasses.is_dataclass(value):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "id"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(values)
