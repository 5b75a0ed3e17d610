"""The session report: JSON for machines and a self-contained HTML page for people."""

from __future__ import annotations

import difflib
import html
import json
import time
from pathlib import Path
from typing import Any

from .shapes import words

REPORT_VERSION = 1


def build_report(
    mode: str, upstream: str, counts: dict[str, int], tests: list[dict[str, Any]], root: Path | None = None
) -> dict[str, Any]:
    """The JSON document: session figures plus, per test, its comparisons and misses. `root` (the
    rootdir) is recorded so the page can show cassette paths the way the user types them."""
    summary = dict(counts)
    tuned = [t["finetune"] for t in tests if t.get("finetune")]
    if tuned:  # the live fine-tune comparison: how much of the cassettes the fine-tune recalls
        summary.update(
            finetune_compared=sum(int(f["compared"]) for f in tuned), finetune_verbatim=sum(int(f["verbatim"]) for f in tuned)
        )
    return {
        "seedreplay_report": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": mode,
        "upstream": upstream,
        "rootdir": str(root) if root is not None else None,
        "summary": summary,
        "tests": [
            {
                "nodeid": t["nodeid"],
                "cassette": t["cassette"],
                "mode": t["mode"],
                "outcome": "failed" if t.get("failed") else "passed",
                "replayed": t.get("replayed", 0),
                "recorded": t.get("recorded", 0),
                "drift": t.get("drift", []),
                "misses": t.get("misses", []),
                "finetune": t.get("finetune"),  # the fine-tune asked in live mode, with the test's verbatim recall
            }
            for t in sorted(tests, key=lambda t: t["nodeid"])
            if t.get("mode") != "off"
        ],
    }


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
"""


# The summary's figures as the terminal summary names them.
_LABELS = {
    "live_compared": "live-compared",
    "upstream_errors": "upstream errors",
    "unsaved": "not saved",
    "finetune_compared": "fine-tune compared",
    "finetune_verbatim": "fine-tune verbatim",
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
        out.append(_index_html(shown))
    root = report.get("rootdir")
    for number, test in enumerate(shown):
        out.append(_test_html(test, f"test-{number}", root))
    out.append("</body></html>\n")
    return "\n".join(out)


def _verdict(test: dict[str, Any]) -> tuple[str, str]:
    """(badge class, words) for a whole test: drifted, missing recordings, or unchanged."""
    drifted = sum(1 for d in test.get("drift", []) if d.get("drifted"))
    missing = len(test.get("misses", [])) + sum(1 for d in test.get("drift", []) if not d.get("recorded", True))
    if drifted:
        return "drifted", f"{drifted} drifted"
    if missing:
        return "missing", f"{missing} missing"
    return "unchanged", "unchanged"


def _lowest_similarity(test: dict[str, Any]) -> float | None:
    scores = [float(d.get("similarity", 0)) for d in test.get("drift", []) if d.get("recorded", True)]
    return min(scores) if scores else None


def _worst_first(test: dict[str, Any]) -> tuple:
    # Drifted tests first (least similar first), then tests with missing recordings, then the rest.
    rank = {"drifted": 0, "missing": 1, "unchanged": 2}[_verdict(test)[0]]
    lowest = _lowest_similarity(test)
    return rank, lowest if lowest is not None else 1.0, test["nodeid"]


def _index_html(tests: list[dict[str, Any]]) -> str:
    e = html.escape
    rows = ["<table class=index>", "<tr><th>test</th><th>verdict</th><th>answers</th><th>lowest similarity</th></tr>"]
    for number, test in enumerate(tests):
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
            f"<b>{int(tuned['verbatim'])}/{int(tuned['compared'])}</b> verbatim ({float(tuned['recall']):.0%})</p>"
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


def _comparison_html(d: dict[str, Any]) -> str:
    e = html.escape
    if not d.get("recorded", True):
        badge, verdict = "unrecorded", "no recording"
    elif d.get("drifted"):
        badge, verdict = "drifted", "drifted"
    else:
        badge, verdict = "unchanged", "unchanged"
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
