"""YAML in (go-yaml v3's reading) and out (byte for byte what kustomize prints), against
fixtures printed by kubectl's kustomize (testdata/yaml) and go-yaml's rules."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tidegate.kustomize import KustomizeError, build_yaml
from tidegate.kustomize._yaml import (
    MalformedYAML,
    dump,
    dump_all,
    parse_documents,
    parse_kustomization_yaml,
    split_documents,
)

TESTDATA = Path(__file__).parent / "testdata" / "yaml"
CASES = sorted(p for p in TESTDATA.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_output_is_kustomizes_byte_for_byte(case: Path) -> None:
    expected = (case / "expected.yaml").read_text()
    assert build_yaml(case) == expected
    # The same through the bare functions (all objects are ConfigMaps: ordered by name).
    objects = parse_documents((case / "cm.yaml").read_text(), "cm.yaml")
    assert dump_all(sorted(objects, key=lambda o: o["metadata"]["name"])) == expected


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_output_matches_kubectl_live(case: Path) -> None:
    reference = subprocess.run(
        ["kubectl", "kustomize", str(case)], capture_output=True, text=True, check=False
    )
    assert reference.returncode == 0, reference.stderr
    assert build_yaml(case) == reference.stdout


def _read(value: str) -> Any:
    return parse_documents(f"apiVersion: v1\nkind: X\nmetadata:\n  name: x\nv: {value}\n", "t")[0][
        "v"
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),  # YAML 1.2: only true/false are booleans
        ("on", "on"),
        ("True", True),
        ("0x1F", 31),
        ("017", 15),  # still octal in go-yaml v3
        ("0o17", 15),
        ("09", 9.0),  # not octal: a float
        ("1_000", 1000),
        ("+5", 5),
        ("-0b101", -5),
        ("18446744073709551615", 2**64 - 1),
        ("18446744073709551616", 1.8446744073709552e19),
        ("1e400", "1e400"),  # out of range: go-yaml keeps the string
        (".5", 0.5),
        ("1:20", "1:20"),  # no base 60 in go-yaml
        ("2001-12-14", "2001-12-14T00:00:00Z"),
        ("2001-12-14 21:59:43.10", "2001-12-14T21:59:43.1Z"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43.1-05:00"),
        ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"),  # not a Go layout
        ("2001-02-30", "2001-02-30"),  # no such day
        ("~", None),
        ("", None),
        ("'yes'", "yes"),
    ],
)
def test_plain_scalars_read_as_go_yaml_v3(text: str, value: Any) -> None:
    assert _read(text) == value
    assert type(_read(text)) is type(value)


def test_kustomization_files_read_as_yaml_1_1() -> None:
    assert parse_kustomization_yaml("a: yes\nb: off\nc: 2001-12-14\nd: 0x10\n") == {
        "a": True,
        "b": False,
        "c": "2001-12-14",
        "d": 16,
    }


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (1.0, "1"),
        (100.0, "100"),
        (1e6, "1000000"),
        (1234567.5, "1.2345675e+06"),  # JSON 1234567.5, then go-yaml's %g
        (123456.5, "123456.5"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e20, "1e+20"),  # beyond int64 once JSON wrote it as an integer
        (1e21, "1e+21"),
        (-0.0, "0"),
        (1.5e-7, "1.5e-07"),
        (123456789012345678.0, "123456789012345680"),
        (2**64 * 1.0, "1.8446744073709552e+19"),
    ],
)
def test_floats_print_as_kustomize_prints_them(value: float, printed: str) -> None:
    assert dump({"v": value}) == f"v: {printed}\n"


def test_infinity_cannot_be_printed() -> None:
    with pytest.raises(KustomizeError, match=r"json: unsupported value: \+Inf"):
        dump({"v": math.inf})


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("yes", '"yes"'),
        ("y", '"y"'),
        ("1.5", '"1.5"'),
        ("1_000", '"1_000"'),
        ("1:20", '"1:20"'),  # base 60 is still quoted
        ("2024-01-01", '"2024-01-01"'),
        ("", '""'),
        ("<<", "<<"),
        ("a: b", "'a: b'"),
        ("#x", "'#x'"),
        ("x #y", "'x #y'"),
        ("it's", "it's"),
        ("'q", "'''q'"),
        (" lead", "' lead'"),
        ("tab\there", '"tab\\there"'),
        ("emoji 😀", '"emoji \\U0001F600"'),
        ("é", "é"),
        ("x\n", "|\n  x"),
        ("x", "x"),
        ("x\ny", "|-\n  x\n  y"),
        ("x\n\n", "|+\n  x\n"),
        ("  x\ny", "|2-\n    x\n  y"),
        ("trailing \nx", '"trailing \\nx"'),
    ],
)
def test_strings_are_quoted_as_go_yaml_v2_quotes_them(value: str, printed: str) -> None:
    assert dump({"v": value}) == f"v: {printed}\n"


def test_long_strings_fold_at_80_columns() -> None:
    words = " ".join(f"word{i:02d}" for i in range(20))
    assert dump({"key": words}) == (
        "key: word00 word01 word02 word03 word04 word05 word06 word07 word08 word09 word10\n"
        "  word11 word12 word13 word14 word15 word16 word17 word18 word19\n"
    )
    # Keys never fold; beyond 128 bytes they become complex keys.
    long_key = "k" * 129
    assert dump({long_key: 1}) == f"? {long_key}\n: 1\n"


def test_keys_are_in_go_yaml_v2_natural_order() -> None:
    keys = ["b", "a10", "a9", "a", "B", "_x", "a-b", "a.b", "1", "10", "9", "é"]
    printed = [line.split(":")[0] for line in dump(dict.fromkeys(keys, 1)).splitlines()]
    assert printed == ["_x", '"1"', '"9"', '"10"', "B", "a", "a-b", "a.b", "a9", "a10", "b", "é"]


def test_layout_of_collections() -> None:
    obj = {"m": {"list": ["a", ["b", "c"], {"k": 1, "j": None}, {}, []], "empty": {}}}
    assert dump(obj) == (
        "m:\n  empty: {}\n  list:\n  - a\n  - - b\n    - c\n  - j: null\n    k: 1\n  - {}\n  - []\n"
    )


def test_documents_are_separated_like_kustomize() -> None:
    assert dump_all([{"a": 1}, {"b": 2}]) == "a: 1\n---\nb: 2\n"
    assert dump_all([]) == ""


def test_invalid_yaml_names_the_line_counted_in_its_document() -> None:
    text = "apiVersion: v1\nkind: A\nmetadata:\n  name: a\n---\nkind: B\nmetadata:\n  name: [b\n"
    with pytest.raises(MalformedYAML) as failure:
        parse_documents(text, "objects.yaml")
    assert str(failure.value) == (
        # go-yaml names the line before the flow sequence, counted from the document's start
        "MalformedYAMLError: yaml: line 2: did not find expected ',' or ']' in File: objects.yaml"
    )


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(MalformedYAML, match='line 3: mapping key "a" already defined at line 2'):
        parse_documents("kind: A\na: 1\na: 2\n", "dup.yaml")


def test_control_characters_are_refused_on_output() -> None:
    with pytest.raises(KustomizeError, match="control characters are not allowed"):
        dump({"v": "a\x7fb"})


def test_separator_lines_must_hold_only_a_comment() -> None:
    assert split_documents("a: 1\n--- # fine\nb: 2\n") == ["a: 1\n", "b: 2\n"]
    with pytest.raises(KustomizeError, match="invalid document separator: --- b: 2"):
        split_documents("a: 1\n--- b: 2\n")


def test_anchors_are_copies() -> None:
    obj = parse_documents("kind: A\nx: &x {a: 1}\ny: *x\n", "t")[0]
    obj["x"]["a"] = 2
    assert obj["y"] == {"a": 1}


def test_custom_tags_are_dropped() -> None:
    assert parse_documents("kind: A\nv: !Ref thing\nw: !!binary aGk=\n", "t")[0] == {
        "kind": "A",
        "v": "thing",
        "w": "hi",
    }
