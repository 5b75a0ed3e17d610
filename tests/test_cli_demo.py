"""The README's first command: `seedreplay demo` tells the whole story end to end, offline — record,
replay, export, seeded fine-tune, verify, and the learned tier serving a reworded question."""

import re

from click.testing import CliRunner

from pytest_seedreplay.cli import main


def figures(output: str, pattern: str) -> list[tuple[str, ...]]:
    return re.findall(pattern, output)


def test_demo_records_replays_fine_tunes_verifies_and_serves_from_the_learned_tier():
    result = CliRunner().invoke(main, ["demo", "--latency-ms", "0", "--job-seconds", "0.3"])
    out = result.output
    assert result.exit_code == 0, out

    # [1] twelve misses recorded, [2] twelve hits identical to them with no upstream request, and a named miss.
    record = out.split("[2]")[0]
    assert record.count("X-Seedreplay-Cache: miss") == 12 and "12 misses, 12 recorded" in record
    assert "X-Seedreplay-Cache: hit for 12/12, answers identical to the recordings: 12/12" in out
    assert "upstream requests during the replay: 0" in out
    assert "HTTP 404: no recording for key v1:" in out and "differs in: seed: 7 → 8" in out
    # [3] the export, [4] the job followed to its end and recorded in the manifest.
    assert "12 examples from 12 recordings" in out and "valid: True" in out
    assert "Fine-tuning job started" in out and "succeeded: ft:gpt-4o-mini-2024-07-18:seedreplay:demo:" in out
    assert re.search(r"recorded v1 in \S+finetunes\.json: ask ft:\S+ with seed 4242", out)
    # [5] recall: every answer with the seed, none without it, most reworded questions.
    assert "with seed                verbatim recall 100% (12/12)" in out
    assert "without seed             verbatim recall   0% (0/12)" in out
    ((share, verbatim, asked),) = figures(out, r"paraphrased, with seed   verbatim recall +(\d+)% \((\d+)/(\d+)\)")
    assert asked == "24" and int(verbatim) >= 18
    # [6] the reworded question is answered by the fine-tune, verbatim; the untrained one falls through.
    serve = out.split("[6]")[1]
    assert "X-Seedreplay-Cache: finetune   X-Seedreplay-Finetune-Model: ft:gpt-4o-mini-2024-07-18:seedreplay:demo:" in serve
    assert "the recorded answer to 'How do I reset my password?': True" in serve
    assert "X-Seedreplay-Cache: miss (the fine-tune's answer was not a trained one" in serve
    assert "proxy stats: learned-tier answers 1, fell through 1, misses 1, recorded 1" in serve
    assert re.search(r"Done in \d+\.\d s", out)
