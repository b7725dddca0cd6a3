"""Post-build substitution: fluxcd/pkg's envsubst test cases (eval_test.go, funcs_test.go,
parse_test.go, themselves from tldp.org's parameter substitution examples), and the object
rules of kustomize_varsub.go and its tests."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.envsubst import (
    SubstitutionError,
    VariableNotSet,
    is_substitution_disabled,
    post_build_variables,
    substitute,
    substitute_object,
    validate_variable_names,
)

# (variables, input, output), from envsubst's TestExpand.
EXPAND = [
    ({}, "abcdEFGH28ij", "abcdEFGH28ij"),
    ({"var01": "abcdEFGH28ij"}, "${#var01}", "12"),
    ({"var01": "abcdEFGH28ij"}, "${var01^}", "AbcdEFGH28ij"),
    ({"var01": "abcdEFGH28ij"}, "${var01^^}", "ABCDEFGH28IJ"),
    ({"var01": "ABCDEFGH28IJ"}, "${var01,}", "aBCDEFGH28IJ"),
    ({"var01": "ABCDEFGH28IJ"}, "${var01,,}", "abcdefgh28ij"),
    (
        {"path_name": "/home/bozo/ideas/thoughts.for.today"},
        "${path_name:11}",
        "ideas/thoughts.for.today",
    ),
    ({"path_name": "/home/bozo/ideas/thoughts.for.today"}, "${path_name:11:5}", "ideas"),
    ({"var": "abc"}, "${var=xyz}", "abc"),
    ({}, "${var=xyz}", "xyz"),
    ({"default_var": "foo"}, "something ${var=${default_var}}", "something foo"),
    ({"default_var": "foo1"}, "foo: ${var=${default_var}-suffix}", "foo: foo1-suffix"),
    ({"default_var": "foo1"}, "foo: ${var=prefix${default_var}-suffix}", "foo: prefixfoo1-suffix"),
    ({}, "${var:=xyz}", "xyz"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ/#abc/XYZ}", "XYZABC123ABCabc"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ//abc/xyz}", "xyzABC123ABCxyz"),
    ({"stringZ": "abcABC123ABCabc"}, "${stringZ/abc/xyz}", "xyzABC123ABCabc"),
    ({"filename": "bash.string.txt"}, "${filename#*.}", "string.txt"),
    ({"filename": "path/to/file"}, "${filename#*/}", "to/file"),
    ({"filename": "/path/to/file"}, "${filename#*/}", "path/to/file"),
    ({"filename": "bash.string.txt"}, "${filename##*.}", "txt"),
    ({"filename": "path/to/file"}, "${filename##*/}", "file"),
    ({"filename": "/path/to/file"}, "${filename##*/}", "file"),
    ({"filename": "bash.string.txt"}, "${filename%.*}", "bash.string"),
    ({"filename": "bash.string.txt"}, "${filename%%.*}", "bash"),
    ({"var01": "abcdEFGH28ij"}, "${var=${var01^^}}", "ABCDEFGH28IJ"),
    ({"var01": "abcdEFGH28ij"}, "$${var01}", "${var01}"),
    (
        {"var01": "abcdEFGH28ij"},
        "some text ${var01}$${var$${var01}$var01${var01}",
        "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
    ),
    ({"default_var": "foo"}, "something $${var=${default_var}}", "something ${var=foo}"),
    ({"stringZ": "foo/bar"}, r"${stringZ/\//-}", "foo-bar"),
    ({"stringZ": "foo/bar/baz"}, r"${stringZ//\//-}", "foo-bar-baz"),
    ({"default_var": "foo"}, "\\\\something ${var=${default_var}}", "\\\\something foo"),
    ({"stringZ": "foo.bar"}, "${stringZ/./}", "foobar"),
]


@pytest.mark.parametrize(("variables", "text", "expected"), EXPAND)
def test_expand(variables: dict[str, str], text: str, expected: str) -> None:
    assert substitute(text, variables) == expected


# (variables, input, output or None when the variable is reported missing), TestExpandStrict.
STRICT: list[tuple[dict[str, str], str, str | None]] = [
    ({}, "abcdEFGH28ij", "abcdEFGH28ij"),
    ({"foo": "bar"}, "${foo}", "bar"),
    ({"foo": ""}, "${foo}", ""),
    ({}, "${missing}", None),
    ({"foo": "bar"}, "${missing:=default}", "default"),
    # A transformation of a missing variable is an error too (fluxcd/flux2#5836)...
    *[
        ({}, text, None)
        for text in (
            "${#missing}",
            "${missing^}",
            "${missing^^}",
            "${missing,}",
            "${missing,,}",
            "${missing:0}",
            "${missing:0:10}",
            "${missing/pattern/replacement}",
            "${missing//pattern/replacement}",
            "${missing/#pattern/replacement}",
            "${missing/%pattern/replacement}",
            "${missing#pattern}",
            "${missing##pattern}",
            "${missing%pattern}",
            "${missing%%pattern}",
        )
    ],
    # ...while the forms that bring a default are not.
    ({}, "${missing:-fallback}", "fallback"),
    ({}, "${missing:=assigned}", "assigned"),
    ({}, "${missing=assigned}", "assigned"),
]


@pytest.mark.parametrize(("variables", "text", "expected"), STRICT)
def test_expand_strict(variables: dict[str, str], text: str, expected: str | None) -> None:
    if expected is not None:
        assert substitute(text, variables, strict=True) == expected
        return
    with pytest.raises(VariableNotSet) as missing:
        substitute(text, variables, strict=True)
    assert missing.value.name == "missing"
    assert str(missing.value) == 'variable not set (strict mode): "missing"'
    # Without strict, the same text reads the variable as empty.
    substitute(text, variables)


def test_strict_evaluates_unused_defaults_too() -> None:
    # Go evaluates a function's arguments before looking at its variable.
    assert substitute("${a:=${b}}", {"a": "x"}) == "x"
    with pytest.raises(VariableNotSet, match='"b"'):
        substitute("${a:=${b}}", {"a": "x"}, strict=True)


# (value, expression on `v`, result): funcs_test.go, through the expressions that call them.
FUNCTIONS = [
    ("Hello World", "${#v}", "11"),
    ("Hello World", "${v,,}", "hello world"),
    ("HELLO WORLD", "${v,}", "hELLO WORLD"),
    ("", "${v,}", ""),
    ("Hello World", "${v^^}", "HELLO WORLD"),
    ("hello world", "${v^}", "Hello world"),
    ("", "${v^}", ""),
    ("Hello World", "${v:=Hola Mundo}", "Hello World"),
    ("", "${v:=Hola Mundo}", "Hola Mundo"),
    ("123456789123456789", "${v:0:8}", "12345678"),
    ("123456789123456789", "${v:1:8}", "23456789"),
    ("123456789123456789", "${v:9}", "123456789"),
    ("123456789123456789", "${v:9:50}", "123456789"),
    ("123456789123456789", "${v: -3:2}", "123456789123456789"),  # ' -3' is no number
    ("123456789123456789", "${v:0-3:2}", "123456789123456789"),
    ("12345678", "${v:9:1}", ""),
    ("hello world", "${v:2:-1}", "llo worl"),
    ("hello world", "${v:0:-3}", "hello wo"),
    ("hello world", "${v:8:-8}", ""),
    ("hello world", "${v:x}", "hello world"),  # bash keeps the value for a bad position
    # Lengths and offsets are Go's: UTF-8 bytes.
    ("héllo", "${#v}", "6"),
    ("héllo", "${v:3}", "llo"),
    # Case mapping is rune by rune: `ß` has no one-rune upper case.
    ("straße", "${v^^}", "STRAßE"),
    ("ÉCOLE", "${v,,}", "école"),
    # A replacement with no replacement text removes for / and //, not for /# and /%.
    ("a.b.c", "${v//./}", "abc"),
    ("a.b.c", "${v/#a/}", "a.b.c"),
    ("a.b.c", "${v/%c/}", "a.b.c"),
    # Globs: `*` and `?` match `/` too, unlike Go's path.Match.
    ("a/b/c", "${v#*/}", "b/c"),
    ("a/b/c", "${v##*/}", "c"),
    ("a/b/c", "${v%/*}", "a/b"),
    ("a/b/c", "${v%%/*}", "a"),
    ("v1.2.3", "${v#v}", "1.2.3"),
    ("abc", "${v#[a-b]}", "bc"),
    ("abc", "${v#[^a]}", "abc"),
    ("abc", "${v#[}", "abc"),  # a malformed glob leaves the value
]


@pytest.mark.parametrize(("value", "text", "expected"), FUNCTIONS)
def test_functions(value: str, text: str, expected: str) -> None:
    assert substitute(text, {"v": value}) == expected


def test_default_concatenates_its_parts() -> None:
    assert substitute("${v:=Hola Mundo${a}${b}}", {"a": "-Bonjour", "b": "-Halló"}) == (
        "Hola Mundo-Bonjour-Halló"
    )
    # Every default form falls back on an empty value, and `:?`/`:+` are defaults too.
    for operator in ("=", ":=", ":-", ":?", ":+"):
        assert substitute(f"${{v{operator}d}}", {"v": ""}) == "d", operator
        assert substitute(f"${{v{operator}d}}", {"v": "x"}) == "x", operator


PARSED = [
    # Texts of parse_test.go that parse; here, what they give with no variables set.
    ("text", "text"),
    ("}text", "}text"),
    ("http://github.com", "http://github.com"),
    ("$${string}", "${string}"),
    ("$$string", "$string"),
    ("\\\\.\\pipe\\pipename", "\\\\.\\pipe\\pipename"),
    ("${string#$%:*{}", ""),
    ("hello ${#string} world", "hello 0 world"),
    ("\\\\ hello ${#string} world \\\\", "\\\\ hello 0 world \\\\"),
    ("$string ${", None),
    ("price: $5 and $$10", "price: $5 and $10"),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_plain_text_and_escapes(text: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(SubstitutionError):
            substitute(text, {})
    else:
        assert substitute(text, {}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${var", "missing closing brace"),
        ("${var-default}", "missing closing brace"),  # not a form envsubst knows
        ("${var:}", "unable to parse substitution within function"),
        ("${}", "unable to parse variable name"),
        ("${-}", "unable to parse variable name"),
        ("${#}", "bad substitution"),
        ("${var^x}", "bad substitution"),
        ("${var/a}", "bad substitution"),
        ("x ${a} ${b", "missing closing brace"),
    ],
)
def test_malformed_expressions(text: str, message: str) -> None:
    with pytest.raises(SubstitutionError) as failure:
        substitute(text, {"var": "v"})
    assert str(failure.value) == message
    assert not isinstance(failure.value, VariableNotSet)


def test_only_the_braced_form_is_expanded() -> None:
    assert substitute("$HOME ${HOME}", {"HOME": "/root"}) == "$HOME /root"


def test_nul_ends_the_text_as_in_go() -> None:
    assert substitute("a\0b", {}) == "a"
    assert substitute("${a}\0${a}", {"a": "x"}) == "x"


# -- objects ---------------------------------------------------------------------------------


def deployment() -> dict[str, Any]:
    """kustomize_varsub_test.go's Deployment (testdata/resources/deployment.yaml)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "app",
            "namespace": "apps",
            "labels": {"environment": "${cluster_env:=dev}", "region": "${cluster_region}"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {
                    "annotations": {
                        "prometheus.io/scrape": "${prometheus_scrape:=false}",
                        "prometheus.io/port": "${prometheus_port}",
                    },
                    "labels": {"app": "app"},
                },
                "spec": {"containers": [{"name": "nginx", "image": "${image}"}]},
            },
        },
    }


# The Flux Kustomization's inline variables over its ConfigMap's (testdata/configmap.yaml).
FLUX_VARIABLES = post_build_variables(
    [{"prometheus_scrape": '"true"', "prometheus_port": '"9797"', "image": "nginx:1.21.4"}],
    {"cluster_env": "prod", "cluster_region": "eu-central-1"},
)


def test_object_substituted_as_flux_does() -> None:
    result = substitute_object(deployment(), FLUX_VARIABLES)
    assert result["metadata"]["labels"] == {"environment": "prod", "region": "eu-central-1"}
    template = result["spec"]["template"]
    # The quotes in the values keep these strings once the YAML is read back.
    assert template["metadata"]["annotations"] == {
        "prometheus.io/port": "9797",
        "prometheus.io/scrape": "true",
    }
    assert template["spec"]["containers"][0]["image"] == "nginx:1.21.4"


@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_disabled_objects_are_left_alone(where: str) -> None:
    obj = deployment()
    obj["metadata"].setdefault(where, {})["kustomize.toolkit.fluxcd.io/substitute"] = "disabled"
    assert is_substitution_disabled(obj)
    assert substitute_object(obj, FLUX_VARIABLES) is obj
    assert substitute_object(obj, {}, strict=True, always=True) is obj
    obj["metadata"][where]["kustomize.toolkit.fluxcd.io/substitute"] = "enabled"
    assert not is_substitution_disabled(obj)


def test_nothing_happens_without_variables_unless_always() -> None:
    obj = deployment()
    assert substitute_object(obj, {}) is obj
    # substituteStrategy: Always (TestKustomization_Varsub_Always).
    result = substitute_object(obj, {}, always=True)
    # An empty value leaves `region:` with nothing: null, as in Flux.
    assert result["metadata"]["labels"] == {"environment": "dev", "region": None}
    assert "${" not in str(result)
    assert obj == deployment()  # the input is not changed


def test_values_take_their_yaml_type() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "annotations": {"id": "${quote}${id}${quote}"}},
        "spec": {"replicas": "${replicas}", "paused": "${paused}", "label": "${quote}on${quote}"},
    }
    variables = {"replicas": "3", "paused": "on", "quote": '"', "id": "123"}
    result = substitute_object(obj, variables)
    assert result["spec"]["replicas"] == 3
    assert result["spec"]["paused"] is True  # YAML 1.1, as sigs.k8s.io/yaml reads it
    assert result["spec"]["label"] == "on"
    assert result["metadata"]["annotations"] == {"id": "123"}  # Flux's documented quote trick


def test_empty_values_in_strict_mode() -> None:
    # TestKustomization_Varsub_StrictEmptyValues: a variable set to "" exists.
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-vars-strict-empty", "labels": {"from-inline": "${empty}"}},
    }
    result = substitute_object(obj, {"empty": ""}, strict=True)
    assert result["metadata"]["labels"] == {"from-inline": None}
    assert substitute_object(obj, {"dummy": "x"}) == result


def test_strict_mode_error_is_fluxs() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    obj["data"] = {"missing": "${missing}"}
    with pytest.raises(SubstitutionError) as failure:
        substitute_object(obj, {"present": "x"}, strict=True)
    assert str(failure.value) == (
        'envsubst error: variable substitution failed: variable not set (strict mode): "missing"'
    )
    assert isinstance(failure.value.__cause__, VariableNotSet)
    assert substitute_object(obj, {"present": "x"})["data"] == {"missing": None}


def test_invalid_variable_names_are_refused() -> None:
    with pytest.raises(SubstitutionError) as failure:
        substitute_object(deployment(), {"cluster-env": "prod"})
    assert str(failure.value) == (
        "envsubst error: 'cluster-env' var name is invalid, "
        "must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
    )
    validate_variable_names(["_a", "A1", "snake_case"])
    for name in ("1a", "é", "a.b", ""):
        with pytest.raises(SubstitutionError):
            validate_variable_names([name])


def test_a_result_that_is_not_yaml() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    obj["data"] = {"key": "${value}"}
    with pytest.raises(SubstitutionError, match=r"^envsubst error: YAMLToJSON: yaml: line 3: "):
        substitute_object(obj, {"value": "a: b"})


def test_post_build_variables() -> None:
    variables = post_build_variables(
        [{"a": "from-configmap", "b": "multi\nline\n"}, {"a": "from-secret", "c": "c"}],
        {"c": "inline"},
    )
    assert variables == {"a": "from-secret", "b": "multiline", "c": "inline"}
    assert post_build_variables([]) == {}
