"""The session report: JSON for machines and a self-contained HTML page for people."""

from __future__ import annotations

import difflib
import html
import json
import shlex
import time
from pathlib import Path
from typing import Any

from .drift import CHANGED, IDENTICAL, REWORDED, VERDICTS
from .shapes import words

REPORT_VERSION = 1
MISSING = "missing"  # a test whose answers had no recording to compare with
# A test's verdict is its worst comparison's; reports group tests in this order.
TEST_VERDICTS = (CHANGED, REWORDED, MISSING, IDENTICAL)


def build_report(
    mode: str, upstream: str, counts: dict[str, int], tests: list[dict[str, Any]], root: Path | None = None
) -> dict[str, Any]:
    """The JSON document: session figures plus, per test, its comparisons and misses. `root` (the
    rootdir) is recorded so the page can show cassette paths the way the user types them."""
    summary = dict(counts)
    shown = [t for t in sorted(tests, key=lambda t: t["nodeid"]) if t.get("mode") != "off"]
    tuned = [t["finetune"] for t in tests if t.get("finetune")]
    if tuned:  # the live fine-tune comparison: how much of the cassettes the fine-tune recalls
        summary.update(
            finetune_compared=sum(int(f["compared"]) for f in tuned),
            finetune_verbatim=sum(int(f["verbatim"]) for f in tuned),
            finetune_reworded=sum(int(f.get("reworded", 0)) for f in tuned),
            finetune_changed=sum(int(f.get("changed", 0)) for f in tuned),
        )
    return {
        "seedreplay_report": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": mode,
        "upstream": upstream,
        "rootdir": str(root) if root is not None else None,
        "summary": summary,
        "verdicts": verdict_counts(t.get("drift", []) for t in shown),  # per comparison, for CI tools
        "rewrite_command": rewrite_command(shown),  # re-records only the tests whose answers changed
        "tests": [
            {
                "nodeid": t["nodeid"],
                "cassette": t["cassette"],
                "mode": t["mode"],
                "outcome": "failed" if t.get("failed") else "passed",
                "verdict": test_verdict(t) if t.get("drift") or t.get("misses") else None,
                "replayed": t.get("replayed", 0),
                "recorded": t.get("recorded", 0),
                "drift": t.get("drift", []),  # each comparison with its verdict and differences
                "misses": t.get("misses", []),
                "finetune": t.get("finetune"),  # the fine-tune asked in live mode, with the test's verbatim recall
            }
            for t in shown
        ],
    }


# --- verdicts -----------------------------------------------------------------------------------


def comparison_verdict(drift: dict[str, Any]) -> str:
    """One comparison's verdict; data written before verdicts existed counts a drift as changed."""
    if not drift.get("recorded", True):
        return MISSING
    verdict = drift.get("verdict")
    if verdict in VERDICTS:
        return str(verdict)
    return CHANGED if drift.get("drifted") else IDENTICAL


def test_verdict(test: dict[str, Any]) -> str:
    """A test's verdict: its worst comparison's (a miss counts as missing)."""
    found = {comparison_verdict(d) for d in test.get("drift", [])}
    if test.get("misses"):
        found.add(MISSING)
    return next((v for v in TEST_VERDICTS if v in found), IDENTICAL)


def verdict_counts(drifts: Any) -> dict[str, int]:
    """Comparisons per verdict, every verdict named (0 included) so CI can read a fixed shape."""
    counts = dict.fromkeys(TEST_VERDICTS, 0)
    for tests_drift in drifts:
        for drift in tests_drift:
            counts[comparison_verdict(drift)] += 1
    return counts


def rewrite_command(tests: list[dict[str, Any]]) -> str | None:
    """The command that re-records only the tests whose answers changed (None: none did)."""
    changed = [t["nodeid"] for t in tests if test_verdict(t) == CHANGED]
    if not changed:
        return None
    return "pytest --seedreplay=rewrite " + " ".join(shlex.quote(n) for n in changed)


def html_path(json_path: Path) -> Path:
    """The HTML page sits next to the JSON: `report.json` -> `report.html`."""
    return json_path.with_suffix(".html") if json_path.suffix == ".json" else json_path.with_name(json_path.name + ".html")


def write_report(path: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    page = html_path(path)
    page.write_text(render_html(report), encoding="utf-8")
    return path, page


# --- HTML ---------------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:2em;word-break:break-all}
table.summary td{padding:.2em 1em .2em 0}
table.index{border-collapse:collapse;margin:1em 0} table.index th{text-align:left;border-bottom:1px solid #ccc}
table.index td,table.index th{padding:.25em 1em .25em 0;vertical-align:top} table.index td:first-child{word-break:break-all}
.cmp{border:1px solid #ccc;border-radius:6px;margin:1em 0;padding:.6em 1em}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:.6em;margin:.3em 0;border-radius:4px}
del{background:#fdd;text-decoration:line-through} ins{background:#dfd;text-decoration:none}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-weight:600}
.drifted{background:#c0392b} .unchanged{background:#27ae60} .unrecorded,.missing{background:#7f8c8d}
.meta{color:#555;font-size:.92em} .miss{background:#fff4e5} .changed{color:#c0392b;font-weight:600}
.v-changed{background:#c0392b} .v-reworded{background:#d68910} .v-identical{background:#27ae60} .v-missing{background:#7f8c8d}
table.differences{border-collapse:collapse;margin:.4em 0} table.differences td{padding:.15em .8em .15em 0}
table.differences td:first-child{color:#c0392b;font-weight:600} tr.group th{padding-top:.8em;font-size:1.05em}
.hint{background:#eef5fb;padding:.3em .6em;border-radius:4px} .accept pre{background:#fdf2e9}
"""


# The summary's figures as the terminal summary names them.
_LABELS = {
    "live_compared": "live-compared",
    "upstream_errors": "upstream errors",
    "unsaved": "not saved",
    "finetune_compared": "fine-tune compared",
    "finetune_verbatim": "fine-tune verbatim",
    "finetune_reworded": "fine-tune reworded",
    "finetune_changed": "fine-tune changed",
}


def render_html(report: dict[str, Any]) -> str:
    """One page, no external assets; every text from a request or answer is escaped."""
    e = html.escape
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>seedreplay report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>seedreplay report</h1>",
        (
            f"<p class=meta>mode <b>{e(str(report.get('mode')))}</b> · upstream {e(str(report.get('upstream')))}"
            f" · {e(str(report.get('created')))}</p>"
        ),
        "<table class=summary>",
    ]
    for name, value in report.get("summary", {}).items():
        label = _LABELS.get(name, name.replace("_", " "))
        out.append(f"<tr><td>{e(label)}</td><td><b>{int(value)}</b></td></tr>")
    out.append("</table>")
    shown = sorted((t for t in report.get("tests", []) if t.get("drift") or t.get("misses")), key=_worst_first)
    if not shown:
        out.append("<p>No live comparisons or misses in this run.</p>")
    else:
        out.append(_verdicts_html(shown))
        out.append(_accept_html(report, shown))
        out.append(_index_html(shown))
    root = report.get("rootdir")
    group = None
    for number, test in enumerate(shown):
        if test_verdict(test) != group:  # tests come grouped by verdict, changed first
            group = test_verdict(test)
            out.append(f"<h2 class=group id=verdict-{group}>{_GROUP_TITLES[group]}</h2>")
        out.append(_test_html(test, f"test-{number}", root))
    out.append("</body></html>\n")
    return "\n".join(out)


_GROUP_TITLES = {
    CHANGED: "Changed: the behaviour differs",
    REWORDED: "Reworded: the same behaviour in other words",
    MISSING: "Missing: no recording to compare with",
    IDENTICAL: "Identical",
}


def _verdicts_html(tests: list[dict[str, Any]]) -> str:
    """One line per verdict: how many comparisons had it."""
    counts = verdict_counts(t.get("drift", []) for t in tests)
    cells = [f"<span class='badge v-{v}'>{v}</span> <b>{counts[v]}</b>" for v in TEST_VERDICTS if counts[v]]
    return f"<p class=verdicts>{' · '.join(cells)}</p>" if cells else ""


def _accept_html(report: dict[str, Any], tests: list[dict[str, Any]]) -> str:
    """The one command that accepts the changed answers, to copy after reviewing them."""
    command = report.get("rewrite_command") or rewrite_command(tests)
    if not command:
        return ""
    where = f" (from {html.escape(str(report['rootdir']))})" if report.get("rootdir") else ""
    return (
        f"<div class=accept><p>To accept the changed answers, re-record only those tests{where}:</p>"
        f"<pre>{html.escape(command)}</pre></div>"
    )


def _verdict(test: dict[str, Any]) -> tuple[str, str]:
    """(badge class, words) for a whole test: its verdict and how many comparisons had it."""
    verdict = test_verdict(test)
    many = len(test.get("misses", [])) if verdict == MISSING else 0
    many += sum(1 for d in test.get("drift", []) if comparison_verdict(d) == verdict)
    return f"v-{verdict}", verdict if verdict == IDENTICAL else f"{many} {verdict}"


def _lowest_similarity(test: dict[str, Any]) -> float | None:
    scores = [float(d.get("similarity", 0)) for d in test.get("drift", []) if d.get("recorded", True)]
    return min(scores) if scores else None


def _worst_first(test: dict[str, Any]) -> tuple:
    # Changed tests first, then reworded, missing, identical; least similar first within each.
    rank = TEST_VERDICTS.index(test_verdict(test))
    lowest = _lowest_similarity(test)
    return rank, lowest if lowest is not None else 1.0, test["nodeid"]


def _index_html(tests: list[dict[str, Any]]) -> str:
    e = html.escape
    rows = ["<table class=index>", "<tr><th>test</th><th>verdict</th><th>answers</th><th>lowest similarity</th></tr>"]
    group = None
    for number, test in enumerate(tests):
        if test_verdict(test) != group:
            group = test_verdict(test)
            rows.append(f"<tr class=group><th colspan=4>{e(group)}</th></tr>")
        badge, verdict = _verdict(test)
        lowest = _lowest_similarity(test)
        rows.append(
            f'<tr><td><a href="#test-{number}">{e(test["nodeid"])}</a></td>'
            f"<td><span class='badge {badge}'>{e(verdict)}</span></td>"
            f"<td>{len(test.get('drift', [])) + len(test.get('misses', []))}</td>"
            f"<td>{'' if lowest is None else f'{lowest:.2f}'}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _relative(path: str, root: str | None) -> str:
    if root:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return path


def _test_html(test: dict[str, Any], anchor: str, root: str | None) -> str:
    e = html.escape
    parts = [
        f"<h2 id={anchor}>{e(test['nodeid'])}</h2>",
        f"<p class=meta>cassette {e(_relative(test['cassette'], root))} · mode {e(test['mode'])} · {e(test['outcome'])}</p>",
    ]
    tuned = test.get("finetune")
    if tuned:
        parts.append(
            f"<p class=meta>fine-tune {e(str(tuned['model']))} ({e(str(tuned['version']))}, seed {int(tuned['seed'])}): "
            f"<b>{int(tuned['verbatim'])}/{int(tuned['compared'])}</b> verbatim ({float(tuned['recall']):.0%}), "
            f"{int(tuned.get('reworded', 0))} reworded, {int(tuned.get('changed', 0))} changed</p>"
        )
    for message in test.get("misses", []):
        parts.append(f"<pre class=miss>missing recording: {e(message)}</pre>")
    for drift in test.get("drift", []):
        parts.append(_comparison_html(drift))
    return "\n".join(parts)


def _pair(name: str, recorded: Any, live: Any, changed: bool) -> str:
    """`name value` when unchanged, `name old → new (changed)` when not, nothing when neither has one."""
    e = html.escape
    if recorded is None and live is None:
        return ""
    if not changed:
        return f"{name} {e(str(live if live is not None else recorded))}"
    return f"<span class=changed>{name} {e(str(recorded))} → {e(str(live))} (changed)</span>"


def _differences_html(d: dict[str, Any]) -> str:
    """The structural differences as a small table, then the no-seed hint; nothing when neither."""
    e = html.escape
    split = [str(text).partition(": ") for text in d.get("differences") or []]  # `what: how`
    rows = [f"<tr><td>{e(what)}</td><td>{e(how)}</td></tr>" for what, _, how in split]
    parts = [f"<table class=differences>{''.join(rows)}</table>"] if rows else []
    if d.get("hint"):
        parts.append(f"<p class=hint>{e(str(d['hint']))}</p>")
    return "\n".join(parts)


def _comparison_html(d: dict[str, Any]) -> str:
    e = html.escape
    verdict = comparison_verdict(d)
    badge = f"v-{verdict}"
    if verdict == MISSING:
        verdict = "no recording"
    old, new = highlight(d.get("recorded_text", ""), d.get("live_text", ""))
    facts = [
        f"similarity <b>{float(d.get('similarity', 0)):.2f}</b>",
        f"verbatim {'yes' if d.get('verbatim') else 'no'}",
        _pair("system_fingerprint", d.get("recorded_fingerprint"), d.get("live_fingerprint"), bool(d.get("fingerprint_changed"))),
        _pair(
            "finish_reason", d.get("recorded_finish_reason"), d.get("live_finish_reason"), bool(d.get("finish_reason_changed"))
        ),
    ]
    return "\n".join(
        [
            "<div class=cmp>",
            (
                f"<p><span class='badge {badge}'>{verdict}</span> {e(str(d.get('endpoint')))}"
                f" <code>{e(str(d.get('key')))}</code></p>"
            ),
            f"<p class=meta>{' · '.join(f for f in facts if f)}</p>",
            _differences_html(d),
            f"<div><b>prompt</b><pre>{e(d.get('prompt', ''))}</pre></div>",
            f"<div class=cols><div><b>recorded</b><pre>{old}</pre></div>",
            f"<div><b>live</b><pre>{new}</pre></div></div>",
            "</div>",
        ]
    )


def highlight(recorded: str, live: str) -> tuple[str, str]:
    """Both texts as escaped HTML, words only in the recording in <del>, only in the live one in <ins>."""
    # Words with their trailing space, the pieces streams are cut in: changes read as phrases.
    a, b = words(recorded), words(live)
    old, new = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        left, right = html.escape("".join(a[i1:i2])), html.escape("".join(b[j1:j2]))
        if op == "equal":
            old.append(left)
            new.append(right)
            continue
        if left:
            old.append(f"<del>{left}</del>")
        if right:
            new.append(f"<ins>{right}</ins>")
    return "".join(old), "".join(new)
