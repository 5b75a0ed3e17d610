"""YAML as plain data: the same values as yaml.safe_load, and everything beyond data refused while parsing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_seedreplay.store.yamldata import WITH_LIBYAML, NotData, load_data


class NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


# YAML reads NEL and the Unicode line/paragraph separators in plain text as line breaks: leave them out.
text_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x85\u2028\u2029")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(text_chars),
    st.binary(max_size=64),
)
keys = st.one_of(st.text(text_chars, max_size=12), st.integers(), st.booleans(), st.none())
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5), max_leaves=40
)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([False, True, None]))
def test_any_plain_document_loads_as_safe_load_reads_it(document, flow) -> None:
    text = yaml.dump(document, Dumper=NoAliasDumper, default_flow_style=flow, allow_unicode=True)
    assert load_data(text) == yaml.safe_load(text) == document


# YAML 1.1 typing of plain scalars, block styles, explicit data tags, document markers, comments.
HAND_WRITTEN = """\
%YAML 1.1
--- # a comment
ints: [0, -7, 0x1F, 0o17, 017, 1_000, '12', "13", 1:30]
floats: [1.5, -2.0e-3, .inf, -.Inf, 6.8523015e+5, 1_000.5]
bools: [yes, No, TRUE, off, On, y, n]
nulls: [~, null, Null, '', ]
dates: [2001-12-14, 2001-12-14t21:59:43.10-05:00]
strings: [hello, 'it''s', "tab\\tand \\u00e9", plain with spaces, -dash, ".5x"]
explicit: [!!str 1, !!int "3", !!float 1, !!bool "yes", !!null "", !!binary aGk=, !!timestamp 2002-12-14]
tagged collections: !!map {a: !!seq [1]}
literal: |
  line one
    indented
folded: >
  folded
  text
empty:
2: two
true: yes-key
~: null-key
...
"""


def test_hand_written_yaml_loads_as_safe_load_reads_it() -> None:
    assert load_data(HAND_WRITTEN) == yaml.safe_load(HAND_WRITTEN)


def test_nan_is_a_float_nan() -> None:
    assert math.isnan(load_data("x: .NaN")["x"])


def test_an_empty_stream_is_none() -> None:
    assert load_data("") is None
    assert load_data("# only a comment\n") is None


def test_bytes_in_are_read_as_utf8_text() -> None:
    assert load_data("name: café\n".encode()) == {"name": "café"}


BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    + ["interactions: [*i]"]
)


@pytest.mark.parametrize(
    "text, line, refused",
    [
        (BOMB, 1, "an anchor (&a) is not allowed"),
        ("a: 1\nb: *nowhere\n", 2, "an alias (*nowhere) is not allowed"),
        ("a: &x plain\n", 1, "an anchor (&x) is not allowed"),
        ("x: 1\nrun: !!python/object/apply:os.system [echo pwned]\n", 2, "the tag !!python/object/apply:os.system"),
        ("f: !!python/name:os.system\n", 1, "the tag !!python/name:os.system"),
        ("t: !!python/tuple [1, 2]\n", 1, "the tag !!python/tuple"),
        ("s: !!python/str x\n", 1, "the tag !!python/str"),
        ("c: !Custom {a: 1}\n", 1, "the tag !Custom"),
        ("c: !local x\n", 1, "the tag !local"),
        ("c: ! x\n", 1, "the tag !"),
        ("s: !!set {a, b}\n", 1, "the tag !!set"),
        ("o: !!omap [a: 1]\n", 1, "the tag !!omap"),
        ("base: {a: 1}\nmerged:\n  <<: {a: 2}\n", 3, "a merge key (<<)"),
        ("v: =\n", 1, "the plain scalar '='"),
        ("? [a, b]\n: 1\n", 1, "a mapping or list used as a key"),
        ("--- 1\n--- 2\n", 2, "a second document (---)"),
    ],
)
def test_what_is_not_plain_data_is_refused_with_its_line(text: str, line: int, refused: str) -> None:
    with pytest.raises(NotData) as error:
        load_data(text)
    assert error.value.line == line
    assert refused in str(error.value)
    assert "\n" not in str(error.value)


def test_a_python_tag_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(NotData):
        load_data(f"- !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()
    # The unsafe loader would have run it: the test above can tell.
    yaml.load(f"- !!python/object/apply:os.system ['touch {marker}']\n", Loader=yaml.UnsafeLoader)
    assert marker.exists()


def test_malformed_yaml_raises_yaml_error_with_its_place() -> None:
    with pytest.raises(yaml.YAMLError) as error:
        load_data("interactions: [\n  - {request: ")
    assert not isinstance(error.value, NotData)
    assert error.value.problem_mark is not None


@pytest.mark.parametrize("text", ['a: !!binary "a"', "a: !!int x", "a: !!timestamp nope", "a: !!float 1.2.3", "a: 2001-13-45"])
def test_a_scalar_that_is_not_its_type_is_a_yaml_error_with_its_place(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as error:
        load_data(text)
    assert error.value.problem_mark.line == 0 and error.value.problem


def test_deep_nesting_does_not_overflow_the_stack() -> None:
    # libyaml stops at its own nesting limit; the pure-Python parser has none, and the build loop
    # keeps its own stack either way (no recursion).
    depth = 900
    expected: list = []
    for _ in range(depth - 1):
        expected = [expected]
    assert load_data("[" * depth + "]" * depth) == expected


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    assert WITH_LIBYAML == yaml.__with_libyaml__


def test_without_libyaml_the_pure_python_parser_reads_and_refuses_the_same(monkeypatch) -> None:
    from pytest_seedreplay.store import yamldata

    monkeypatch.setattr(yamldata, "_Parser", yaml.SafeLoader)
    assert load_data(HAND_WRITTEN) == yaml.safe_load(HAND_WRITTEN)
    with pytest.raises(NotData, match=r"an anchor \(&a\)"):
        load_data(BOMB)
