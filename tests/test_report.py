"""The session report grouped by verdict: changed first, the differences as a table above the text
diff, the verdicts and the rewrite command in the JSON; the HTML checked by parsing it."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.drift import compare
from pytest_seedreplay.report import build_report, rewrite_command, write_report

CHAT = "/v1/chat/completions"


def answer(text: str, finish: str = "stop", tool: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if tool:
        message["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": tool, "arguments": '{"city": "Paris"}'}}]
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


def entry(body: dict[str, Any], seed: int | None = 1) -> Entry:
    request: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "weather?"}]}
    if seed is not None:
        request["seed"] = seed
    canonical = canonical_request(CHAT, request)
    return Entry(key=key_of_canonical(canonical), endpoint=CHAT, request=canonical, body=body)


def run_report(tmp_path: Path) -> tuple[dict[str, Any], str]:
    compared = {
        "t.py::test_same": compare(entry(answer("Sunny and warm.")), entry(answer("Sunny and warm."))),
        "t.py::test_words": compare(entry(answer("It is sunny and warm.")), entry(answer("It is warm and sunny."))),
        "t.py::test_tool": compare(entry(answer("", "tool_calls", "get_weather")), entry(answer("", "tool_calls", "get_time"))),
        "t.py::test_cut[a b]": compare(entry(answer("Sunny and warm."), seed=None), entry(answer("Sunny", "length"), seed=None)),
    }
    tests = [
        {"nodeid": nodeid, "cassette": str(tmp_path / "c.yaml"), "mode": "live", "drift": [d.to_dict()]}
        for nodeid, d in compared.items()
    ]
    report = build_report("live", "http://up/v1", {"live_compared": 4, "drifted": 3}, tests, root=tmp_path)
    path, page = write_report(tmp_path / "report.json", report)
    return json.loads(path.read_text()), page.read_text()


class Outline(HTMLParser):
    """The page as a list of (tag, class, id, text) for the elements the report is made of."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.seen.append((tag, found.get("class") or "", found.get("id") or ""))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def outline(page: str) -> Outline:
    parser = Outline()
    parser.feed(page)
    return parser


def test_the_json_carries_each_verdict_its_differences_and_the_rewrite_command(tmp_path):
    data, _ = run_report(tmp_path)
    assert data["verdicts"] == {"changed": 2, "reworded": 1, "missing": 0, "identical": 1}
    verdicts = {t["nodeid"]: t["verdict"] for t in data["tests"]}
    assert verdicts == {
        "t.py::test_same": "identical",
        "t.py::test_words": "reworded",
        "t.py::test_tool": "changed",
        "t.py::test_cut[a b]": "changed",
    }
    tool = next(t for t in data["tests"] if t["nodeid"] == "t.py::test_tool")["drift"][0]
    assert tool["differences"] == ["tool: get_weather → get_time"]
    cut = next(t for t in data["tests"] if t["nodeid"] == "t.py::test_cut[a b]")["drift"][0]
    assert cut["differences"][0] == "finish_reason: stop → length" and "no seed" in cut["hint"]
    # Only the changed tests, quoted for a shell.
    assert data["rewrite_command"] == "pytest --seedreplay=rewrite 't.py::test_cut[a b]' t.py::test_tool"


def test_the_html_groups_by_verdict_changed_first_with_the_differences_above_the_text_diff(tmp_path):
    _, page = run_report(tmp_path)
    parsed = outline(page)
    groups = [ident for tag, cls, ident in parsed.seen if tag == "h2" and cls == "group"]
    assert groups == ["verdict-changed", "verdict-reworded", "verdict-identical"]
    headings = [ident for tag, _, ident in parsed.seen if tag == "h2"]
    changed_at, reworded_at = headings.index("verdict-changed"), headings.index("verdict-reworded")
    assert headings[changed_at + 1 : reworded_at] == ["test-0", "test-1"]  # both changed tests under "changed"
    # In each comparison the differences table comes before the recorded / live columns.
    comparisons = page.split("<div class=cmp>")[1:]
    with_table = [c for c in comparisons if "<table class=differences>" in c]
    assert len(comparisons) == 4 and len(with_table) == 2
    assert all(c.index("<table class=differences>") < c.index("<div class=cols>") for c in with_table)
    text = "".join(parsed.texts)
    assert "get_weather → get_time" in text and "pytest --seedreplay=rewrite 't.py::test_cut[a b]' t.py::test_tool" in text
    assert "the request had no seed" in text
    index = page[page.index("<table class=index>") : page.index("</table>", page.index("<table class=index>"))]
    assert index.index("t.py::test_tool") < index.index("t.py::test_words") < index.index("t.py::test_same")


def test_no_changed_test_means_no_rewrite_command():
    assert rewrite_command([{"nodeid": "a", "drift": [{"verdict": "reworded", "recorded": True}]}]) is None
    assert rewrite_command([{"nodeid": "a", "drift": [{"drifted": True}]}]) == "pytest --seedreplay=rewrite a"  # older data
