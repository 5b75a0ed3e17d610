"""The README's first command: `seedreplay demo` tells the record/replay story end to end, offline."""

from click.testing import CliRunner

from pytest_seedreplay.cli import main


def test_demo_shows_miss_then_hit_then_offline_replay_and_a_named_miss():
    result = CliRunner().invoke(main, ["demo", "--latency-ms", "0"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    statuses = [line.split("X-Seedreplay-Cache:")[1].split()[0] for line in lines if "X-Seedreplay-Cache:" in line]
    assert statuses == ["miss", "hit", "hit", "hit"]
    assert result.output.count("True") == 3  # the hit, the stream and the offline replay all gave the recorded text
    assert "HTTP 404" in result.output and "seed: 42 → 43" in result.output
