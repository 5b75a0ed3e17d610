"""The verify run as a self-contained HTML page, drawn with the drift report's style and word diff."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..core.atomic import write_atomically
from ..report import _STYLE as DRIFT_STYLE
from ..report import highlight
from .verify import LABELS, Report

_EXTRA_STYLE = ".recall td{padding:.2em 1.2em .2em 0} .answer{margin:.4em 0}"


def write(report: Report, path: Path) -> tuple[Path, Path]:
    """`PATH.html` and, next to it, `PATH.json` (the same run for scripts)."""
    page = path if path.suffix == ".html" else path.with_suffix(".html")
    data = page.with_suffix(".json")
    write_atomically(data, (json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    write_atomically(page, render(report).encode("utf-8"))
    return page, data


def render(report: Report) -> str:
    e = html.escape
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>seedreplay verify: {e(report.model)}</title>",
        f"<style>{DRIFT_STYLE}{_EXTRA_STYLE}</style></head><body>",
        f"<h1>Fine-tune recall: {e(report.model)}</h1>",
        (
            f"<p class=meta>{e(report.version or 'no manifest version')} · seed {e(str(report.seed))} · "
            f"{e(report.base_url)} · dataset {e(report.dataset)} · {e(report.created)} · "
            f"{len(report.answers)} asks in {report.elapsed:.1f} s</p>"
        ),
        "<table class='index recall'><tr><th>condition</th><th>verbatim recall</th><th>mean similarity</th>"
        "<th>reworded</th><th>changed</th><th>errors</th></tr>",
    ]
    for condition in report.conditions():
        s = report.summary(condition)
        out.append(
            f"<tr><td>{e(LABELS[condition])}</td><td><b>{s.recall:.0%}</b> ({s.verbatim}/{s.asked - s.errors})</td>"
            f"<td>{s.similarity:.2f}</td><td>{s.reworded}</td><td>{s.changed}</td><td>{s.errors}</td></tr>"
        )
    out.append("</table>")
    out.append(_index(report))
    for trained in report.examples:
        out.append(_example(report, trained))
    out.append("</body></html>\n")
    return "\n".join(out)


def _badge(verdict: str, error: str | None) -> str:
    if error:
        return "<span class='badge missing'>error</span>"
    if verdict == "verbatim":
        return "<span class='badge unchanged'>verbatim</span>"
    return f"<span class='badge drifted'>{verdict}</span>"  # reworded or changed


def _index(report: Report) -> str:
    e = html.escape
    rows = [
        "<table class=index><tr><th>example</th><th>prompt</th>"
        + "".join(f"<th>{e(LABELS[c])}<br><small>verbatim/asked · worst similarity</small></th>" for c in report.conditions())
        + "</tr>"
    ]
    for t in report.examples:
        cells = []
        for condition in report.conditions():
            answers = report.answers_of(t.index, condition)
            hits = sum(a.verbatim for a in answers)
            worst = min((a.similarity for a in answers), default=0.0)
            cells.append(f"<td>{hits}/{len(answers)} · {worst:.2f}</td>" if answers else "<td>–</td>")
        rows.append(f"<tr><td><a href='#example-{t.index}'>{t.index}</a></td><td>{e(t.prompt)}</td>{''.join(cells)}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _example(report: Report, trained) -> str:
    e = html.escape
    parts = [
        f"<h2 id='example-{trained.index}'>example {trained.index}: {e(trained.prompt)}</h2>",
        f"<div><b>trained answer</b><pre>{e(trained.answer_text)}</pre></div>",
    ]
    for condition in report.conditions():
        for answer in report.answers_of(trained.index, condition):
            _, live = highlight(trained.answer_text, answer.text)
            asked = f" · asked: {e(answer.prompt)}" if condition == "paraphrase" else ""
            parts.append(
                f"<div class='cmp answer'><p>{_badge(answer.verdict, answer.error)} {e(LABELS[condition])}"
                f" · similarity <b>{answer.similarity:.2f}</b>{asked}</p>"
                + (f"<pre class=miss>{e(answer.error)}</pre>" if answer.error else f"<pre>{live}</pre>")
                + "</div>"
            )
    return "\n".join(parts)
