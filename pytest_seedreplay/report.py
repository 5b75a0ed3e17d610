"""The session report: JSON for machines and a self-contained HTML page for people."""

from __future__ import annotations

import difflib
import html
import json
import re
import time
from pathlib import Path
from typing import Any

REPORT_VERSION = 1
_TOKENS = re.compile(r"\S+\s*|\s+")  # words with their trailing space: changes read as phrases


def build_report(mode: str, upstream: str, counts: dict[str, int], tests: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document: session figures plus, per test, its comparisons and misses."""
    return {
        "seedreplay_report": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": mode,
        "upstream": upstream,
        "summary": dict(counts),
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
.cmp{border:1px solid #ccc;border-radius:6px;margin:1em 0;padding:.6em 1em}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:.6em;margin:.3em 0;border-radius:4px}
del{background:#fdd;text-decoration:line-through} ins{background:#dfd;text-decoration:none}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-weight:600}
.drifted{background:#c0392b} .unchanged{background:#27ae60} .unrecorded{background:#7f8c8d}
.meta{color:#555;font-size:.92em} .miss{background:#fff4e5}
"""


def render_html(report: dict[str, Any]) -> str:
    """One page, no external assets; every text from a request or answer is escaped."""
    e = html.escape
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>seedreplay report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>seedreplay report</h1>",
        f"<p class=meta>mode <b>{e(str(report.get('mode')))}</b> · upstream {e(str(report.get('upstream')))}"
        f" · {e(str(report.get('created')))}</p>",
        "<table class=summary>",
    ]
    for name, value in report.get("summary", {}).items():
        out.append(f"<tr><td>{e(name.replace('_', '-'))}</td><td><b>{int(value)}</b></td></tr>")
    out.append("</table>")
    shown = [t for t in report.get("tests", []) if t.get("drift") or t.get("misses")]
    if not shown:
        out.append("<p>No live comparisons or misses in this run.</p>")
    for test in shown:
        out.append(_test_html(test))
    out.append("</body></html>\n")
    return "\n".join(out)


def _test_html(test: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        f"<h2>{e(test['nodeid'])}</h2>",
        f"<p class=meta>cassette {e(test['cassette'])} · mode {e(test['mode'])} · {e(test['outcome'])}</p>",
    ]
    for message in test.get("misses", []):
        parts.append(f"<pre class=miss>missing recording: {e(message)}</pre>")
    for drift in test.get("drift", []):
        parts.append(_comparison_html(drift))
    return "\n".join(parts)


def _comparison_html(d: dict[str, Any]) -> str:
    e = html.escape
    if not d.get("recorded", True):
        badge, verdict = "unrecorded", "no recording"
    elif d.get("drifted"):
        badge, verdict = "drifted", "drifted"
    else:
        badge, verdict = "unchanged", "unchanged"
    old, new = highlight(d.get("recorded_text", ""), d.get("live_text", ""))
    fingerprint = f"{d.get('recorded_fingerprint')} → {d.get('live_fingerprint')}"
    finish = f"{d.get('recorded_finish_reason')} → {d.get('live_finish_reason')}"
    return "\n".join(
        [
            "<div class=cmp>",
            f"<p><span class='badge {badge}'>{verdict}</span> {e(str(d.get('endpoint')))}"
            f" <code>{e(str(d.get('key')))}</code></p>",
            f"<p class=meta>similarity <b>{float(d.get('similarity', 0)):.2f}</b>"
            f" · verbatim {'yes' if d.get('verbatim') else 'no'}"
            f" · system_fingerprint {e(fingerprint)}{' (changed)' if d.get('fingerprint_changed') else ''}"
            f" · finish_reason {e(finish)}{' (changed)' if d.get('finish_reason_changed') else ''}</p>",
            f"<div><b>prompt</b><pre>{e(d.get('prompt', ''))}</pre></div>",
            f"<div class=cols><div><b>recorded</b><pre>{old}</pre></div>",
            f"<div><b>live</b><pre>{new}</pre></div></div>",
            "</div>",
        ]
    )


def highlight(recorded: str, live: str) -> tuple[str, str]:
    """Both texts as escaped HTML, words only in the recording in <del>, only in the live one in <ins>."""
    a, b = _TOKENS.findall(recorded), _TOKENS.findall(live)
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
