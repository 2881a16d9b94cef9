"""The ``graphflow`` command line, through real subprocesses (``python -m graphflow.cli`` and the
installed ``graphflow`` script), on the small graphs of ``tests/support/cli_graphs.py``.

Piped output is JSON lines; the terminal display is checked once under a pseudo-terminal and once
in-process with a ``rich`` console that writes to a string.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

SUPPORT = Path(__file__).parent / "support"
APP = "cli_graphs:app"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SUPPORT), env.get("PYTHONPATH")) if p)
    return env


def cli(cwd: Path, *args: str, exe: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*(exe or [sys.executable, "-m", "graphflow.cli"]), *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def events(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every stdout line, parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in proc.stdout.splitlines()]


def end_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    *_, end = events(proc)
    assert end["event"] == "end"
    return end


def assert_one_error_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str):
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("graphflow: error: ")
    for needle in needles:
        assert needle in lines[0]


# -- run -------------------------------------------------------------------------------------------


def test_run_streams_json_lines_and_exits_0(tmp_path):
    proc = cli(tmp_path, "run", APP, "--input", '{"name": "bob"}')
    assert proc.returncode == 0, proc.stderr
    evs = events(proc)
    assert [e["event"] for e in evs] == ["updates", "updates", "end"]
    assert evs[0]["data"] == {"greet": {"greeting": "hello bob", "log": ["greet"]}}
    assert evs[1]["data"] == {"shout": {"greeting": "HELLO BOB!", "log": ["shout"]}}
    assert evs[2]["status"] == "done" and evs[2]["interrupts"] == []
    assert evs[2]["state"] == {"name": "bob", "greeting": "HELLO BOB!", "log": ["greet", "shout"]}
    assert proc.stderr == ""
    assert not (tmp_path / "runs.db").exists()  # no thread, no database


@pytest.mark.parametrize("target", ["cli_graphs:builder", "cli_graphs:make_app"])
def test_run_compiles_a_state_graph_or_calls_a_factory(tmp_path, target):
    proc = cli(tmp_path, "run", target, "--input", '{"name": "ann"}', "--stream", "values")
    assert proc.returncode == 0, proc.stderr
    evs = events(proc)
    assert all(e["event"] == "values" for e in evs[:-1])
    assert evs[-2]["data"]["greeting"] == "HELLO ANN!"
    assert end_of(proc)["state"]["greeting"] == "HELLO ANN!"


def test_run_custom_and_debug_modes(tmp_path):
    proc = cli(tmp_path, "run", "cli_graphs:chatty", "--stream", "custom")
    assert proc.returncode == 0, proc.stderr
    assert [e["data"] for e in events(proc)[:-1]] == [{"progress": i} for i in range(3)]
    proc = cli(tmp_path, "run", APP, "-i", '{"name": "x"}', "--stream", "debug")
    kinds = [(e["data"]["type"], e["data"]["node"]) for e in events(proc)[:-1]]
    assert kinds == [("task", "greet"), ("task_result", "greet"),
                     ("task", "shout"), ("task_result", "shout")]


def test_interrupt_pauses_with_exit_3_then_show_and_resume(tmp_path):
    proc = cli(tmp_path, "run", "cli_graphs:approval", "--input", '{"name": "bob"}',
               "--thread", "t1")
    assert proc.returncode == 3, proc.stderr
    evs = events(proc)
    assert evs[0]["data"] == {"draft": {"greeting": "dear bob", "log": ["draft"]}}
    end = end_of(proc)
    assert end["status"] == "interrupted" and end["next"] == ["review"]
    [pending] = end["interrupts"]
    assert pending["node"] == "review"
    assert pending["value"] == {"question": "publish this?", "text": "dear bob"}
    assert evs[1]["data"]["__interrupt__"] == [pending]

    show = cli(tmp_path, "threads", "show", "t1", "--graph", "cli_graphs:approval")
    assert show.returncode == 0, show.stderr
    [snap] = events(show)
    assert snap["status"] == "interrupted" and snap["next"] == ["review"]
    assert snap["interrupts"] == [pending]
    assert snap["values"]["log"] == ["draft"] and snap["step"] == 1
    assert snap["checkpoint_id"] == end["checkpoint_id"]

    done = cli(tmp_path, "threads", "resume", "t1", "--graph", "cli_graphs:approval",
               "--value", '"yes"')
    assert done.returncode == 0, done.stderr
    assert [list(e["data"]) for e in events(done)[:-1]] == [["review"], ["publish"]]
    assert end_of(done)["state"]["log"] == ["draft", "review:yes", "publish"]
    assert end_of(done)["status"] == "done"

    again = cli(tmp_path, "threads", "resume", "t1", "--graph", "cli_graphs:approval",
                "--value", '"twice"')
    assert_one_error_line(again, 2, "no pending interrupt")


def test_several_interrupts_are_answered_by_id(tmp_path):
    graph = "cli_graphs:two_questions"
    first = cli(tmp_path, "run", graph, "-i", "{}", "-t", "q")
    assert first.returncode == 3
    ids = {i["node"]: i["id"] for i in end_of(first)["interrupts"]}
    assert set(ids) == {"ask_a", "ask_b"}

    ambiguous = cli(tmp_path, "threads", "resume", "q", "--graph", graph, "--value", "1")
    assert_one_error_line(ambiguous, 2, ids["ask_a"], ids["ask_b"], "--id")
    waiting = cli(tmp_path, "threads", "resume", "q", "--graph", graph)  # no value: refused
    assert_one_error_line(waiting, 2, "waiting for an answer")

    one = cli(tmp_path, "threads", "resume", "q", "--graph", graph,
              "--id", ids["ask_a"], "--value", '"A"')
    assert one.returncode == 3, one.stderr
    assert [i["id"] for i in end_of(one)["interrupts"]] == [ids["ask_b"]]

    last = cli(tmp_path, "run", graph, "--thread", "q", "--resume",
               json.dumps({ids["ask_b"]: "B"}))
    assert last.returncode == 0, last.stderr
    assert end_of(last)["state"]["log"] == ["a:A", "b:B"]


def test_static_breakpoint_pauses_and_resume_without_value_continues(tmp_path):
    proc = cli(tmp_path, "run", "cli_graphs:guarded", "-i", '{"name": "x"}', "-t", "b")
    assert proc.returncode == 3, proc.stderr
    end = end_of(proc)
    assert end["status"] == "interrupted" and end["interrupts"] == [] and end["next"] == ["shout"]
    assert end["state"]["greeting"] == "hello x"

    show = cli(tmp_path, "threads", "show", "b", "--graph", "cli_graphs:guarded")
    assert events(show)[0]["status"] == "interrupted"

    cont = cli(tmp_path, "threads", "resume", "b", "--graph", "cli_graphs:guarded")
    assert cont.returncode == 0, cont.stderr
    assert end_of(cont)["state"]["greeting"] == "HELLO X!"


def test_run_error_is_one_line_and_exit_1(tmp_path):
    proc = cli(tmp_path, "run", "cli_graphs:broken", "-i", '{"name": "x"}', "-t", "e")
    assert_one_error_line(proc, 1, "explode", "kaboom", "threads resume e")
    assert events(proc)[0]["data"] == {"greet": {"greeting": "hello x", "log": ["greet"]}}
    show = cli(tmp_path, "threads", "show", "e", "--graph", "cli_graphs:broken")
    assert events(show)[0]["status"] == "stopped" and events(show)[0]["next"] == ["explode"]

    debug = cli(tmp_path, "run", "cli_graphs:broken", "-i", '{"name": "x"}', "--debug")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ValueError" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("graphflow: error: node 'explode' failed")


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "cli_graphs:nope", "-i", "{}"], "no attribute 'nope'"),
    (["run", "no_such_module_xyz:app", "-i", "{}"], "no module named 'no_such_module_xyz'"),
    (["run", "cli_graphs", "-i", "{}"], "MODULE:ATTR"),
    (["run", "cli_graphs:not_a_graph", "-i", "{}"], "not a graph"),
    (["run", APP, "--input", '{"name": '], "--input is not valid JSON"),
    (["run", APP, "--input", '{"nmae": "x"}'], "--input key 'nmae' is not in the state"),
    (["run", APP, "--resume", '"x"'], "--resume"),
    (["run", APP, "--stream", "nope"], "--stream"),
    (["draw", APP, "-o", "graph.xyz"], ".svg"),
    (["draw", APP, "-o", "no/such/dir/graph.svg"], "cannot write 'no/such/dir/graph.svg'"),
    (["threads", "resume", "t", "--graph", APP, "--id", "abc"], "--id needs --value"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, args, needle):
    assert_one_error_line(cli(tmp_path, *args), 2, needle)


@pytest.mark.parametrize(("args", "needles"), [
    ([], ["--input is missing required keys 'n', 'notes' of the state Count",
          "no --input was given"]),
    (["-i", '{"n": "zero", "notes": ""}'], ["--input key 'n': expected int, got str 'zero'"]),
    (["-i", '{"notes": "", "n": 1.5}'], ["--input key 'n': expected int, got float 1.5"]),
    (["-i", '{"n": 1, "notes": "", "seen": "x"}'], ["--input key 'seen': expected list[int]"]),
], ids=["no input", "a str for an int", "a float for an int", "a str for a list"])
def test_input_errors_are_found_before_any_node_runs_and_worded_as_such(tmp_path, args,
                                                                        needles):
    proc = cli(tmp_path, "run", "cli_graphs:counter", *args)
    assert_one_error_line(proc, 2, *needles)
    assert "__start__" not in proc.stderr and "node" not in proc.stderr
    assert proc.stdout == ""  # nothing ran
    if args:  # on a thread: nothing was stored either
        assert_one_error_line(cli(tmp_path, "run", "cli_graphs:counter", *args, "-t", "t"), 2,
                              *needles)
        assert cli(tmp_path, "threads", "list").stdout == ""


def test_unknown_thread_and_missing_database(tmp_path):
    for args in (["threads", "list"], ["threads", "show", "t", "--graph", APP],
                 ["threads", "history", "t"], ["threads", "delete", "t"],
                 ["run", APP, "--thread", "t"]):
        assert_one_error_line(cli(tmp_path, *args), 2, "no database 'runs.db'")
    assert not (tmp_path / "runs.db").exists()  # reading never creates an empty database

    assert cli(tmp_path, "run", APP, "-i", '{"name": "x"}', "-t", "real").returncode == 0
    for args in (["threads", "show", "ghost", "--graph", APP], ["threads", "history", "ghost"],
                 ["threads", "resume", "ghost", "--graph", APP], ["threads", "delete", "ghost"],
                 ["run", APP, "--thread", "ghost"], ["draw", APP, "-o", "g.svg", "-t", "ghost"]):
        assert_one_error_line(cli(tmp_path, *args), 2, "no thread 'ghost'")

    (tmp_path / "junk.db").write_text("not a database")
    assert_one_error_line(cli(tmp_path, "threads", "list", "--db", "junk.db"), 2, "junk.db")


def test_threads_list_history_delete(tmp_path):
    db = str(tmp_path / "store.db")
    assert cli(tmp_path, "run", APP, "-i", '{"name": "x"}', "-t", "t1", "--db", db).returncode == 0
    assert cli(tmp_path, "run", "cli_graphs:approval", "-i", '{"name": "y"}', "-t", "t2",
               "--db", db).returncode == 3

    listed = cli(tmp_path, "threads", "list", "--db", db)
    assert listed.returncode == 0, listed.stderr
    rows = {r["thread"]: r for r in events(listed)}
    assert set(rows) == {"t1", "t2"}
    assert rows["t1"]["status"] == "done" and rows["t2"]["status"] == "interrupted"
    assert rows["t2"]["next"] == ["review"]

    hist = cli(tmp_path, "threads", "history", "t1", "--db", db)
    assert hist.returncode == 0, hist.stderr
    cps = events(hist)
    assert [c["step"] for c in cps] == [2, 1, 0, -1]  # newest first
    assert [c["source"] for c in cps] == ["loop", "loop", "loop", "input"]
    assert [c["next"] for c in cps] == [[], ["shout"], ["greet"], ["__start__"]]
    assert cps[0]["parent_id"] == cps[1]["checkpoint_id"]
    limited = cli(tmp_path, "threads", "history", "t1", "--db", db, "--limit", "1",
                  "--graph", APP)
    assert [c["checkpoint_id"] for c in events(limited)] == [cps[0]["checkpoint_id"]]

    deleted = cli(tmp_path, "threads", "delete", "t1", "--db", db)
    assert deleted.returncode == 0 and "t1" in deleted.stdout
    assert [r["thread"] for r in events(cli(tmp_path, "threads", "list", "--db", db))] == ["t2"]
    assert cli(tmp_path, "threads", "delete", "t1", "--db", db).returncode == 2


def _without_pillow(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import PIL`` fails, as without the [draw] extra."""
    blocker = tmp_path / "nopil" / "PIL"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named PIL')\n")
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), env["PYTHONPATH"]])
    return env


def test_draw_png_without_pillow_says_how_to_get_it_once(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "graphflow.cli", "draw", APP, "-o", "g.png"],
                          cwd=tmp_path, env=_without_pillow(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert_one_error_line(proc, 2, "needs Pillow", "graphflow[draw]")
    assert proc.stderr.count("graphflow[draw]") == 1 and "ImportError" not in proc.stderr
    assert not (tmp_path / "g.png").exists()


def test_readme_diagram_example_writes_svg_without_pillow(tmp_path):
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "examples").mkdir()
    for name in ("readme_diagram.py", "quickstart.py", "agent.py"):  # a copy: it writes beside
        shutil.copy(root / "examples" / name, tmp_path / "examples" / name)
    proc = subprocess.run([sys.executable, "examples/readme_diagram.py"], cwd=tmp_path,
                          env=_without_pillow(tmp_path), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "graphflow[draw]" in proc.stderr
    for name in ("quickstart", "agent"):
        assert f"wrote docs/images/{name}.svg" in proc.stdout
        ET.parse(tmp_path / "docs" / "images" / f"{name}.svg")
        assert not (tmp_path / "docs" / "images" / f"{name}.png").exists()


def test_threads_show_works_without_graph_like_history(tmp_path):
    assert cli(tmp_path, "run", "cli_graphs:approval", "-i", '{"name": "bob"}',
               "-t", "t1").returncode == 3
    [plain] = events(cli(tmp_path, "threads", "show", "t1", "--db", "runs.db"))
    [full] = events(cli(tmp_path, "threads", "show", "t1", "--graph", "cli_graphs:approval"))
    for key in ("status", "step", "next", "interrupts", "checkpoint_id", "parent_id",
                "created_at", "metadata"):
        assert plain[key] == full[key], key
    assert plain["status"] == "interrupted" and plain["interrupts"][0]["node"] == "review"
    assert plain["values"] in (full["values"], None)

    # a checkpoint stored as the changes since an earlier one: the graph rebuilds its values
    notes = "x" * 2000
    assert cli(tmp_path, "run", "cli_graphs:counter", "-i", json.dumps({"n": 0, "notes": notes}),
               "-t", "c").returncode == 0
    [plain] = events(cli(tmp_path, "threads", "show", "c"))
    [full] = events(cli(tmp_path, "threads", "show", "c", "-g", "cli_graphs:counter"))
    assert plain["status"] == full["status"] == "done" and plain["step"] == full["step"] == 3
    assert plain["values"] is None and "--graph" in plain["values_note"]
    assert full["values"] == {"n": 3, "notes": notes, "seen": [0, 1, 2]}


def test_terminal_show_without_graph_says_how_to_see_the_values(tmp_path):
    from rich.console import Console

    from graphflow._cli_render import print_snapshot

    record = {"thread": "c", "status": "done", "step": 3, "next": [], "interrupts": [],
              "checkpoint_id": "abc", "values": None,
              "values_note": "stored as the changes since an earlier checkpoint: pass "
                             "--graph MODULE:ATTR to rebuild the state"}
    buf = io.StringIO()
    print_snapshot(Console(file=buf, width=100, color_system=None), record)
    assert "--graph MODULE:ATTR" in buf.getvalue() and "None" not in buf.getvalue()


def test_draw_writes_svg_mermaid_and_png(tmp_path):
    assert cli(tmp_path, "run", "cli_graphs:approval", "-i", '{"name": "y"}',
               "-t", "d").returncode == 3
    for name, extra in (("g.svg", []), ("g.mmd", ["--expand"]), ("g.png", ["-t", "d"]),
                        ("run.svg", ["--thread", "d", "--expand", "1"])):
        proc = cli(tmp_path, "draw", "cli_graphs:approval", "-o", name, *extra)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().endswith(name)
        assert (tmp_path / name).stat().st_size > 0
    root = ET.parse(tmp_path / "g.svg").getroot()
    assert root.tag.endswith("svg")
    ET.parse(tmp_path / "run.svg")
    assert "review" in (tmp_path / "g.mmd").read_text()
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_installed_console_script(tmp_path):
    script = shutil.which("graphflow", path=str(Path(sys.executable).parent))
    assert script, "the graphflow console script is not installed next to sys.executable"
    proc = cli(tmp_path, "run", APP, "--input", '{"name": "eve"}', exe=[script])
    assert proc.returncode == 0, proc.stderr
    assert end_of(proc)["state"]["greeting"] == "HELLO EVE!"
    helped = cli(tmp_path, "--help", exe=[script])
    assert helped.returncode == 0 and "threads" in helped.stdout and "exit codes" in helped.stdout


def test_piped_use_does_not_import_rich(tmp_path):
    code = ("import sys; from graphflow.cli import main; rc = main(sys.argv[1:]); "
            "print('rich' in sys.modules, rc, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "run", APP, "-i", '{"name": "x"}'],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.stderr.split() == ["False", "0"], proc.stderr


# -- the terminal ----------------------------------------------------------------------------------


def test_live_display_renders_nodes_and_final_state(monkeypatch):
    from rich.console import Console

    from graphflow._cli_render import LiveDisplay, run_graph
    from graphflow.checkpoint import MemoryCheckpointer

    monkeypatch.syspath_prepend(str(SUPPORT))
    import cli_graphs

    buf = io.StringIO()
    console = Console(force_terminal=True, file=buf, width=100, color_system=None)
    outcome = run_graph(cli_graphs.app, {"name": "bob"}, thread=None, shown="updates",
                        output=LiveDisplay(console))
    assert outcome.status == "done"
    text = buf.getvalue()
    assert "greet" in text and "shout" in text and "HELLO BOB!" in text
    assert "final state" in text and "done" in text

    buf = io.StringIO()
    console = Console(force_terminal=True, file=buf, width=100, color_system=None)
    graph = cli_graphs.approval.with_checkpointer(MemoryCheckpointer())
    outcome = run_graph(graph, {"name": "bob"}, thread="t", shown="updates",
                        output=LiveDisplay(console, resume_hint="graphflow threads resume t"))
    assert outcome.status == "interrupted"
    text = buf.getvalue()
    assert "draft" in text and "review" in text and "publish this?" in text
    assert outcome.interrupts[0].id in text and "graphflow threads resume t" in text


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_terminal_gets_the_rich_display(tmp_path):
    import pty

    master, slave = pty.openpty()
    env = {**_env(), "COLUMNS": "100", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "graphflow.cli", "run", "cli_graphs:approval",
                             "-i", '{"name": "bob"}', "-t", "tty"], cwd=tmp_path, env=env,
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=30) == 3
    text = out.decode("utf-8", "replace")
    assert '"event"' not in text  # not JSON lines
    assert "draft" in text and "review" in text and "publish this?" in text
    assert "interrupted" in text and "threads resume tty" in text

    show = cli(tmp_path, "threads", "show", "tty", "--graph", "cli_graphs:approval", "--json")
    assert events(show)[0]["status"] == "interrupted"


# -- JSON of values that are not JSON --------------------------------------------------------------


def test_dumps_makes_any_value_json():
    import pydantic

    from graphflow._cli_render import dumps

    class Point(pydantic.BaseModel):
        x: int

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert json.loads(dumps({"p": Point(x=1), "s": {2, 1}})) == {"p": {"x": 1}, "s": [1, 2]}
    assert "2024-01-02" in json.dumps(json.loads(dumps({"when": when})))  # via graphflow's serde
    assert json.loads(dumps({"o": Opaque()})) == {"o": "<opaque>"}  # last resort: repr
    loop: list[Any] = []
    loop.append(loop)
    assert isinstance(json.loads(dumps(loop)), str)
