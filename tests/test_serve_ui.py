"""The run inspector at /ui, end to end in headless Chromium against a real server on
127.0.0.1: a newcomer's path from the README — open /ui, give the key, start a run of the
example graph, watch it live, answer its interrupt from the page (with the keyboard), and see the
timeline, the diff of each step, the run overlay on the diagram, and the usage and cost."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                                             "(pip install playwright)")

sys.path.insert(0, str(Path(__file__).parent / "support"))
from serving import ROOT, Server  # noqa: E402
from waiting import SCALE  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
KEY = "ui-key-" + uuid.uuid4().hex
sync_api.expect.set_options(timeout=60_000 * SCALE)

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must test the UI: Debian's chromium is missing (.ci/run "
                           "installs it)")
    pytest.skip("no chromium (apt-get install chromium)", allow_module_level=True)


def _shapes(svg: str) -> list[str]:
    """The drawing's elements, as the browser and the server write them alike."""
    import re

    return sorted(re.findall(r'(?:stroke|fill)="#[0-9a-fA-F]{6}"', svg))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    gates = tmp_path_factory.mktemp("ui")
    srv = Server(["examples.serve.app:graph", "--db", str(gates / "runs.db"), "--api-key", KEY,
                  "--heartbeat", "0.2"],
                 {"GRAPHFLOW_TEST_GATES": str(gates), "GRAPHFLOW_EXAMPLE_DELAY": "0.3"},
                 cwd=ROOT).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(60_000 * SCALE)
        yield page
        browser.close()


def test_watch_a_run_and_answer_its_interrupt_from_the_page(server, page):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/ui")
    # without the key the page says what is wrong, in words
    sync_api.expect(page.locator("#status")).to_contain_text("API key")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    graph_button = page.locator("#graphs button[data-graph='graph']")
    sync_api.expect(graph_button).to_have_attribute("aria-current", "true")
    sync_api.expect(page.locator("#diagram svg")).to_be_visible()
    assert "draft" in page.locator("#diagram svg").text_content()

    page.get_by_label("Input (JSON) for a new thread of the selected graph").fill(
        '{"request": "two days in Lyon"}')
    page.get_by_role("button", name="Start a run of graph").click()
    page.wait_for_function("() => window.gf.stream && window.gf.stream.readyState === 1")
    live = page.locator("#live-events")
    sync_api.expect(live).to_contain_text("✓ intake")  # followed live, node by node
    sync_api.expect(live).to_contain_text("draft says: Day 1")  # model tokens as they stream
    sync_api.expect(live).to_contain_text("review waits for an answer")
    answer = page.get_by_label("Answer to review")
    sync_api.expect(answer).to_be_visible()
    assert "Book this plan?" in page.locator("#interrupt-list").inner_text()

    answer.focus()  # the keyboard alone answers it
    page.keyboard.type("yes")
    page.keyboard.press("Enter")
    sync_api.expect(live).to_contain_text("✓ confirm")
    sync_api.expect(live).to_contain_text("run ended: success")
    sync_api.expect(page.locator("#thread-summary")).to_contain_text("finished")
    sync_api.expect(page.locator("#interrupts")).to_be_hidden()

    timeline = page.locator("#timeline")
    # the input checkpoint (before the input), the input applied, 5 steps
    sync_api.expect(timeline.locator(":scope > li")).to_have_count(7)
    assert "step 0: input" in timeline.inner_text()
    assert "step 2: draft" in timeline.inner_text()
    draft_step = timeline.locator("li[data-step='2']")
    assert "plan:" in draft_step.inner_text() and "Day 1" in draft_step.inner_text()
    assert "approved" in timeline.locator("li[data-step='3']").inner_text()
    # the overlay: nodes this thread ran are highlighted in the diagram
    thread = page.evaluate("window.gf.thread")
    shown = page.locator("#diagram svg").evaluate("svg => svg.outerHTML")
    assert "path thread" in page.locator("#diagram").get_attribute("aria-label")
    auth = {"X-Api-Key": KEY}
    overlay = httpx.get(f"{server.url}/graphs/graph/svg?thread_id={thread}", headers=auth).text
    plain = httpx.get(f"{server.url}/graphs/graph/svg", headers=auth).text
    assert overlay != plain
    assert _shapes(shown) == _shapes(overlay) != _shapes(plain)
    usage = page.locator("#usage").inner_text()
    assert "output tokens: 0" not in usage and "cost: $0." in usage
    runs = page.locator("#runs tbody tr")
    sync_api.expect(runs).to_have_count(2)
    assert "success" in runs.nth(0).inner_text() and "interrupted" in runs.nth(1).inner_text()
    assert errors == []


def test_keyboard_reaches_threads_and_graphs(server, page):
    page.goto(server.url + "/ui")
    page.wait_for_function("() => document.querySelectorAll('#threads button').length > 0")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip"
    first = page.locator("#threads button").first
    first.focus()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#thread-view")).to_be_visible()
    sync_api.expect(page.locator("#thread-title")).to_contain_text("Thread ")
    page.wait_for_function("() => document.activeElement.id === 'main'")  # focus moves there


def _readme_commands() -> list[str]:
    """The shell commands of the README's serving section, continuation lines joined."""
    import re

    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Serve it over HTTP"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_readme_path_curl_then_the_page(tmp_path, page):
    """README: start the server, create a thread and stream a run with curl, then open /ui,
    pick the thread and answer its interrupt there."""
    import json
    import shlex
    import subprocess

    serve, *curls = _readme_commands()
    assert serve.startswith("GRAPHFLOW_EXAMPLE_DELAY=1 graphflow serve examples.serve.app:graph")
    srv = Server(["examples.serve.app:graph", "--db", str(tmp_path / "runs.db")],
                 {"GRAPHFLOW_TEST_GATES": str(tmp_path), "GRAPHFLOW_EXAMPLE_DELAY": "0.05"},
                 cwd=ROOT).start()
    try:
        outputs = []
        for command in curls:
            argv = shlex.split(command.replace("localhost:8123", f"127.0.0.1:{srv.port}"))
            assert argv[0] == "curl"
            outputs.append(subprocess.run(argv, capture_output=True, text=True, check=True,
                                          timeout=120 * SCALE).stdout)
        assert json.loads(outputs[0])["thread_id"] == "trip-1"
        events = [line[len("event: "):] for line in outputs[1].splitlines()
                  if line.startswith("event: ")]
        assert events[0] == "metadata" and "messages" in events and events[-1] == "end"
        assert '"status": "interrupted"' in outputs[1]

        page.goto(srv.url + "/ui")
        page.locator("#threads button[data-thread='trip-1']").click()
        sync_api.expect(page.locator("#thread-title")).to_have_text("Thread trip-1")
        answer = page.get_by_label("Answer to review")
        answer.fill("yes")
        answer.press("Enter")
        sync_api.expect(page.locator("#live-events")).to_contain_text("run ended: success")
        state = httpx.get(f"{srv.url}/threads/trip-1/state").json()
        assert state["values"]["approved"] is True and state["next"] == []
        assert state["values"]["log"][-1] == "sent the confirmation"
    finally:
        srv.stop()
