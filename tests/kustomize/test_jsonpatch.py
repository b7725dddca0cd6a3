"""JSON 6902 patches as kustomize v5.5.0 applies them (github.com/evanphx/json-patch); the
results and messages were checked with `kubectl kustomize`."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.kustomize._errors import KustomizeError
from tidegate.kustomize._jsonpatch import apply_json_patch, go_float_text, parse_json_patch


def _doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"a~b": "1", "c/d": "2"},
        "list": ["a", "b", "c"],
    }


def _apply(*operations: dict[str, Any]) -> dict[str, Any]:
    return apply_json_patch(_doc(), list(operations))


# -- operations ---------------------------------------------------------------------------------


def test_add() -> None:
    result = _apply(
        {"op": "add", "path": "/list/-", "value": "d"},
        {"op": "add", "path": "/list/0", "value": "first"},
        {"op": "add", "path": "/list/-1", "value": "last"},  # -1 is one past the end,
        {"op": "add", "path": "/spec", "value": {"x": 1}},
        {"op": "add", "path": "/novalue"},
    )
    assert result["list"] == ["first", "a", "b", "c", "d", "last"]
    assert result["spec"] == {"x": 1}
    assert result["novalue"] is None


def test_remove() -> None:
    result = _apply({"op": "remove", "path": "/list/-1"}, {"op": "remove", "path": "/data"})
    assert result["list"] == ["a", "b"]
    assert "data" not in result


def test_replace() -> None:
    result = _apply(
        {"op": "replace", "path": "/list/1", "value": "B"},
        {"op": "replace", "path": "/missing", "value": "added"},  # the library adds it
    )
    assert result["list"] == ["a", "B", "c"]
    assert result["missing"] == "added"


def test_replace_of_the_document() -> None:
    replaced = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}
    assert _apply({"op": "replace", "path": "", "value": replaced}) == replaced
    assert _apply({"op": "replace", "path": "", "value": 5}) == _doc()  # ignored


def test_move_and_copy() -> None:
    result = _apply(
        {"op": "copy", "from": "/list", "path": "/copied"},
        {"op": "move", "from": "/data", "path": "/moved"},
        {"op": "copy", "from": "/nothing", "path": "/null"},
    )
    assert result["copied"] == ["a", "b", "c"]
    assert result["moved"] == {"a~b": "1", "c/d": "2"}
    assert "data" not in result
    assert result["null"] is None


def test_test() -> None:
    _apply(
        {"op": "test", "path": "/list", "value": ["a", "b", "c"]},
        {"op": "test", "path": "/data/a~0b", "value": "1"},
        {"op": "test", "path": "/nothing", "value": None},
    )


def test_pointer_escapes() -> None:
    result = _apply(
        {"op": "remove", "path": "/data/a~0b"},
        {"op": "replace", "path": "/data/c~1d", "value": "x"},
        {"op": "add", "path": "/data/e~01", "value": "y"},
    )
    assert result["data"] == {"c/d": "x", "e~1": "y"}


def test_numbers_come_back_as_float64() -> None:
    doc = {**_doc(), "n": {"ratio": 1.0, "half": 0.5, "big": 9007199254740993, "huge": 10**20}}
    result = apply_json_patch(doc, [])
    assert result["n"] == {"ratio": 1, "half": 0.5, "big": 9007199254740992, "huge": 10**20}
    assert isinstance(result["n"]["ratio"], int)


def test_go_float_text() -> None:
    assert [go_float_text(v) for v in (1.0, 0.1, 1e-7, 1.5e21, 1.2345678901234567e19, -0.0)] == [
        "1",
        "0.1",
        "1e-7",
        "1.5e+21",
        "12345678901234567000",
        "-0",
    ]


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            {"op": "remove", "path": "/nope"},
            "error in remove for path: '/nope': Unable to remove nonexistent key: nope: "
            "missing value",
        ),
        (
            {"op": "add", "path": "/nope/x", "value": 1},
            'add operation does not apply: doc is missing path: "/nope/x": missing value',
        ),
        (
            {"op": "add", "path": "/list/5", "value": 1},
            "error in add for path: '/list/5': Unable to access invalid index: 5: invalid index "
            "referenced",
        ),
        (
            {"op": "add", "path": "/list/x", "value": 1},
            "error in add for path: '/list/x': value was not a proper array index: 'x': "
            'strconv.Atoi: parsing "x": invalid syntax',
        ),
        (
            {"op": "replace", "path": "/list/-", "value": 1},
            "replace operation does not apply: doc is missing key: /list/-: missing value",
        ),
        (
            {"op": "test", "path": "/list/0", "value": "q"},
            "testing value /list/0 failed: test failed",
        ),
        (
            {"op": "move", "from": "/nope", "path": "/x"},
            "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value",
        ),
        ({"op": "bogus", "path": "/x"}, "Unexpected kind: bogus"),
        ({"path": "/x"}, "Unexpected kind: unknown"),
        (
            {"op": "add", "path": "x", "value": 1},
            'add operation does not apply: doc is missing path: "x": missing value',
        ),
    ],
)
def test_errors(operation: dict[str, Any], message: str) -> None:
    with pytest.raises(KustomizeError) as caught:
        _apply(operation)
    assert str(caught.value) == message


# -- reading ------------------------------------------------------------------------------------


def test_json_and_yaml() -> None:
    json_text = '[{"op": "add", "path": "/a", "value": 1}]'
    yaml_text = "# comment\n- op: add\n  path: /a\n  value: 1\n"
    assert parse_json_patch(json_text) == parse_json_patch(yaml_text)


def test_yaml_is_read_as_yaml_1_1() -> None:
    # sigs.k8s.io/yaml reads with go-yaml v2: `yes` is a boolean.
    assert parse_json_patch("- op: add\n  path: /a\n  value: yes\n")[0]["value"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty json patch operations"),
        ("op: add", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        ("[1]", "json: cannot unmarshal number into Go value of type jsonpatch.Operation"),
    ],
)
def test_reading_errors(text: str, message: str) -> None:
    with pytest.raises(KustomizeError, match=message):
        parse_json_patch(text)


def test_comment_only_is_an_empty_patch() -> None:
    assert parse_json_patch("---\n# nothing\n") == []
