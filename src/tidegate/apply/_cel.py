"""`healthCheckExprs`: CEL expressions that tell the health of custom resources, as in Flux.

For objects of an entry's API group and kind (every kind of the group when `kind` is empty), Flux
(fluxcd/pkg/runtime/cel, RFC 0009) reports InProgress while `status.observedGeneration` is behind
`metadata.generation`, then evaluates `inProgress`, `failed` and `current` in that order over the
object's top-level fields (`metadata`, `spec`, `status`, ...): the first one true gives the status,
and none true means InProgress. A failing evaluation makes the status Unknown.

Expressions run on cel-python (`celpy`), a pure-Python CEL, behind `Expression`. It has the
standard language and macros (`has`, `all`, `exists`, `exists_one`, `filter`, `map`, `size`,
`matches`, timestamps); it lacks what Flux's cel-go adds on top: the optional syntax (`a.?b`,
`orValue`), which fails to compile here; the string, set and encoder extensions
(`lowerAscii()`, `split()`, `sets.contains()`, `base64.encode()`) and comparing an int with a
double (`1 < 2.0`), which evaluate to Unknown.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ._health import HealthStatus, Status


class HealthCheckExprError(ValueError):
    """A `healthCheckExprs` entry that cannot be used, worded as Flux words it."""


class CustomHealthCheck(Protocol):
    """One `spec.healthCheckExprs` entry (as `tidegate.api.CustomHealthCheck`)."""

    @property
    def api_version(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def current(self) -> str: ...

    @property
    def in_progress(self) -> str: ...

    @property
    def failed(self) -> str: ...


class Expression:
    """A CEL expression over an object's top-level fields, compiled once."""

    def __init__(self, source: str) -> None:
        celpy = _celpy()
        environment = _environment()
        try:
            self._program = environment.program(environment.compile(source))
        except celpy.CELParseError as exc:
            hint = ""
            if ".?" in source or "[?" in source:
                hint = " (optional field selection is not supported by cel-python)"
            where = f"line {exc.line}, column {exc.column}" if exc.line else "the end"
            raise HealthCheckExprError(
                f"failed to parse the CEL expression '{source}': syntax error at {where}{hint}"
            ) from exc
        self.source = source

    def evaluate(self, obj: Mapping[str, Any]) -> bool:
        """Evaluate with the object's fields as variables; the result must be a boolean.

        Raises `HealthCheckExprError` when evaluation fails (a missing field, a wrong type).
        """
        celpy = _celpy()
        activation = {str(key): celpy.json_to_cel(value) for key, value in obj.items()}
        try:
            result = self._program.evaluate(activation)
        except Exception as exc:  # celpy signals errors by raising as well as by returning them
            result = exc
        if isinstance(result, Exception):
            raise HealthCheckExprError(
                f"failed to evaluate the CEL expression '{self.source}': {_reason(result)}"
            )
        if not isinstance(result, celpy.celtypes.BoolType):
            raise HealthCheckExprError(
                f"failed to evaluate CEL expression as boolean: '{self.source}'"
            )
        return bool(result)

    def __str__(self) -> str:
        return self.source


class CustomHealthChecks:
    """The status reader for `spec.healthCheckExprs`: pass it to `compute_status` or `wait_for`
    in `readers`. Every expression is compiled here, so a bad one fails before any wait."""

    def __init__(self, checks: Sequence[CustomHealthCheck]) -> None:
        self._evaluators: dict[tuple[str, str], _Evaluator] = {}
        for index, check in enumerate(checks):
            group_kind = (check.api_version.rpartition("/")[0], check.kind)
            if group_kind in self._evaluators:
                raise HealthCheckExprError(
                    f"duplicate custom health check for GroupKind {_format(*group_kind)} "
                    f"at healthchecks[{index}]"
                )
            try:
                self._evaluators[group_kind] = _Evaluator(check)
            except HealthCheckExprError as exc:
                raise HealthCheckExprError(
                    f"failed to create custom status evaluator for healthchecks[{index}]: {exc}"
                ) from exc

    def supports(self, group: str, kind: str) -> bool:
        return (group, kind) in self._evaluators or (group, "") in self._evaluators

    def read(self, obj: Mapping[str, Any]) -> Status:
        api_version = obj.get("apiVersion")
        group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
        kind = str(obj.get("kind") or "")
        evaluator = self._evaluators.get((group, kind)) or self._evaluators[(group, "")]
        return evaluator.read(obj)


class _Evaluator:
    """The expressions of one entry (Flux's StatusEvaluator)."""

    def __init__(self, check: CustomHealthCheck) -> None:
        if not check.current:
            raise HealthCheckExprError("expression Current not specified")
        self._expressions: list[tuple[str, Expression, HealthStatus]] = []
        # RFC 0009's order.
        for name, source, status in (
            ("InProgress", check.in_progress, HealthStatus.IN_PROGRESS),
            ("Failed", check.failed, HealthStatus.FAILED),
            ("Current", check.current, HealthStatus.CURRENT),
        ):
            if not source:
                continue
            try:
                self._expressions.append((name, Expression(source), status))
            except HealthCheckExprError as exc:
                raise HealthCheckExprError(f"failed to parse the expression {name}: {exc}") from exc

    def read(self, obj: Mapping[str, Any]) -> Status:
        # Only integers are compared: some CRDs type observedGeneration as a string, and Flux
        # then leaves the decision to the expressions.
        status = obj.get("status")
        observed = status.get("observedGeneration") if isinstance(status, Mapping) else None
        generation = (obj.get("metadata") or {}).get("generation")
        if _is_int(observed) and _is_int(generation) and observed != generation:
            return Status(
                HealthStatus.IN_PROGRESS,
                f"{obj.get('kind')} generation is {generation}, "
                f"but latest observed generation is {observed}",
            )
        for name, expression, result in self._expressions:
            try:
                true = expression.evaluate(obj)
            except HealthCheckExprError as exc:
                return Status(HealthStatus.UNKNOWN, str(exc))
            if true:
                return Status(result, f"healthCheckExprs: {name} is true")
        return Status(HealthStatus.IN_PROGRESS, "healthCheckExprs: no expression is true")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _format(group: str, kind: str) -> str:
    """A GroupKind as Go prints it: `Kind.group`, or `Kind` in the core group."""
    return f"{kind}.{group}" if group else kind


def _reason(error: Exception) -> str:
    # celpy's errors carry the message first, then the Python exception type; an undeclared
    # name's message goes on with a dump of every variable and function, which is of no use here.
    message = str(error.args[0]) if error.args else str(error)
    return message.split(" (in activation", 1)[0]


@functools.cache
def _celpy() -> Any:
    try:
        import celpy  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise HealthCheckExprError(
            "healthCheckExprs need the cel-python package (module celpy), which is not installed"
        ) from exc
    return celpy


@functools.cache
def _environment() -> Any:
    # Building the parser takes a tenth of a second: once per process.
    return _celpy().Environment()
