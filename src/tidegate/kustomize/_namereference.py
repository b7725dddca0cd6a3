"""Name references: after names changed (prefixes, suffixes, content hashes), make every field
that names another object name it by its new name.

This is kustomize's nameReference transformer (`api/filters/nameref`) with its default
configuration (`_fieldspecs.NAME_REFERENCES`). For each field that may name an object of
a target kind, the referral is looked for among the objects that were renamed (or moved to
a namespace) and had, at some point, the name the field holds:

1. objects the referrer can see: all of them for a cluster-scoped referrer, otherwise
   cluster-scoped objects, objects in its namespace, and for a RoleBinding objects in the
   namespaces of its ServiceAccount subjects;
2. that once had that name, once were of the target kind (for `roleRef/name`: of the kind and
   group the roleRef names), and are cluster-scoped, ServiceAccounts, or in the referrer's
   namespace;
3. if several remain, those that got the same name prefixes and suffixes as the referrer
   (an overlay's ConfigMap `cfg` is found by that overlay's Deployment, not by a base's);
4. several objects with the same new name are one referral; otherwise it is an error.

A field holding a mapping (`subjects` of a RoleBinding, a webhook's `service`) has its `name`
set and, when the referral has a namespace, its `namespace` too; when the mapping names a
namespace, only objects in that namespace (originally, else currently) are looked at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ._errors import KustomizeError
from ._fieldspecs import (
    NAME_REFERENCES,
    FieldSpec,
    NameReference,
    TransformerConfig,
    find_fields,
    gvk_selected,
)
from ._resource import ResId, Resource, ResourceList, scalar_text

# --- which prefixes and suffixes an object got, innermost first ---------------------------------
#
# kustomize keeps these in build annotations; here they are attributes of the Resource until
# the shared model has fields for them.

_PREFIXES = "_name_prefixes"
_SUFFIXES = "_name_suffixes"


def name_prefixes(resource: Resource) -> list[str]:
    return list(getattr(resource, _PREFIXES, ()))


def name_suffixes(resource: Resource) -> list[str]:
    return list(getattr(resource, _SUFFIXES, ()))


def record_name_prefix(resource: Resource, prefix: str) -> None:
    if prefix:
        setattr(resource, _PREFIXES, [*name_prefixes(resource), prefix])


def record_name_suffix(resource: Resource, suffix: str) -> None:
    if suffix:
        setattr(resource, _SUFFIXES, [*name_suffixes(resource), suffix])


def copy_name_affixes(source: Resource, target: Resource) -> None:
    setattr(target, _PREFIXES, name_prefixes(source))
    setattr(target, _SUFFIXES, name_suffixes(source))


def _same_ending(a: list[str], b: list[str]) -> bool:
    """kustomize's `SameEndingSubSlice`: the shorter list ends the longer one (two empty
    lists match; an empty and a non-empty one do not)."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if not short:
        return not long
    return long[len(long) - len(short) :] == short


# --- the transformer -------------------------------------------------------------------------


@dataclass
class _Candidate:
    resource: Resource
    current: ResId
    original: ResId
    previous: list[ResId]
    cluster_scoped: bool
    namespace: str  # effective, current
    original_namespace: str  # effective
    prefixes: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)


def fix_name_references(
    resources: ResourceList,
    config: TransformerConfig | None = None,
    *,
    references: Sequence[NameReference] | None = None,
) -> None:
    """Update every name reference to a renamed object (kustomize's `FixBackReferences`).

    Call once per build, at the top level, after `apply_hash_suffixes`, with the
    configuration merged from every level (default: kustomize's), or just its name
    references."""
    if references is None:
        references = config.name_references if config is not None else NAME_REFERENCES
    candidates = [_candidate(r) for r in resources]
    by_previous_name: dict[str, list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        for name in dict.fromkeys(p.name for p in candidate.previous):
            by_previous_name[name].append(candidate)
    if not by_previous_name:
        return
    for candidate in candidates:
        original = candidate.original
        referrer: _Referrer | None = None
        for reference in references:
            for spec in reference.referrers:
                if gvk_selected(
                    original.group,
                    original.version,
                    original.kind,
                    spec.group,
                    spec.version,
                    spec.kind,
                ):
                    referrer = referrer or _Referrer(candidate, by_previous_name, candidates)
                    referrer.fix(reference, spec.path)


def _candidate(resource: Resource) -> _Candidate:
    current = resource.id()
    previous = list(resource.previous)
    original = previous[0] if previous else current
    return _Candidate(
        resource=resource,
        current=current,
        original=original,
        previous=previous,
        cluster_scoped=current.is_cluster_scoped(),
        namespace=current.effective_namespace(),
        original_namespace=original.effective_namespace(),
        prefixes=name_prefixes(resource),
        suffixes=name_suffixes(resource),
    )


class _Referrer:
    """An object that may name others, and the objects it can see."""

    def __init__(
        self,
        me: _Candidate,
        by_previous_name: dict[str, list[_Candidate]],
        everyone: list[_Candidate],
    ) -> None:
        self.me = me
        self.by_previous_name = by_previous_name
        self.everyone = everyone
        self.binding_namespaces = _binding_namespaces(me.resource.obj)

    @cached_property
    def visible_to_me(self) -> list[_Candidate]:
        return self.visible(self.everyone)

    def fix(self, reference: NameReference, path: str) -> None:
        """Update the names at `path` that name objects of the reference's target kind."""
        # The walk matches the referrer's current kind, as kustomize's filter does.
        current = self.me.current
        spec = FieldSpec(path, current.kind, current.group, current.version)
        role_ref = _role_ref_gvk(self.me.resource.obj) if path.endswith("roleRef/name") else None
        field_fix = _FieldFix(self, reference, spec, role_ref)
        for container, key in find_fields(self.me.resource.obj, spec):
            value = container[key]
            if isinstance(value, list):
                for index, item in enumerate(value):
                    field_fix.set(value, index, item)
            elif value is not None:
                field_fix.set(container, key, value)

    def visible(self, pool: list[_Candidate]) -> list[_Candidate]:
        """Those of `pool` this referrer could refer to (kustomize's
        `SubsetThatCouldBeReferencedByResource`), in build order."""
        me = self.me
        if me.cluster_scoped:
            return pool
        return [
            c
            for c in pool
            if c.cluster_scoped
            or c.namespace == me.namespace
            or c.current.namespace in self.binding_namespaces
        ]


class _FieldFix:
    """One referrer field spec of one target kind, applied to one referrer."""

    def __init__(
        self,
        referrer: _Referrer,
        reference: NameReference,
        spec: FieldSpec,
        role_ref: tuple[str, str, str] | None,
    ) -> None:
        self.referrer = referrer
        self.reference = reference
        self.spec = spec
        self.role_ref = role_ref

    def set(self, container: Any, key: Any, value: object) -> None:
        # Anything but names and mappings (nested lists, numbers) is left alone.
        if isinstance(value, dict):
            self._set_mapping(value)
        elif isinstance(value, str):
            referral = self._select(value, self._pool(value), lambda c: c.current.name)
            if referral is not None and referral.current.name != value:
                container[key] = referral.current.name

    def _pool(self, old_name: str) -> list[_Candidate]:
        return self.referrer.visible(self.referrer.by_previous_name.get(old_name, []))

    def _set_mapping(self, mapping: dict[str, Any]) -> None:
        if "name" not in mapping:
            raise KustomizeError(self._where("path config error; no 'name' field in node"))
        old_name = mapping["name"]
        if not isinstance(old_name, str):
            return
        pool = self._pool(old_name)
        if "namespace" in mapping:
            # Objects of that namespace: as they were first, else as they are now.
            namespace = scalar_text(mapping["namespace"])
            if any(c.original_namespace == namespace for c in self.referrer.visible_to_me):
                pool = [c for c in pool if c.original_namespace == namespace]
            else:
                pool = [c for c in pool if c.namespace == namespace]
        referral = self._select(old_name, pool, lambda c: (c.current.name, c.current.namespace))
        if referral is None:
            return
        new_name, new_namespace = referral.current.name, referral.current.namespace
        if new_name == old_name and not new_namespace:
            return
        mapping["name"] = new_name
        if new_namespace:
            mapping["namespace"] = new_namespace

    def _select(
        self, old_name: str, pool: list[_Candidate], same: Callable[[_Candidate], object]
    ) -> _Candidate | None:
        target = self.reference
        me = self.referrer.me
        found = [
            c
            for c in pool
            if any(p.name == old_name for p in c.previous)
            and any(
                gvk_selected(p.group, p.version, p.kind, target.group, target.version, target.kind)
                for p in c.previous
            )
            and (
                self.role_ref is None
                or any(gvk_selected(p.group, p.version, p.kind, *self.role_ref) for p in c.previous)
            )
            and (
                me.cluster_scoped
                or c.cluster_scoped
                or c.current.kind == "ServiceAccount"
                or c.namespace == me.namespace
            )
        ]
        if len(found) == 1:
            return found[0]
        found = [
            c
            for c in found
            if _same_ending(c.prefixes, me.prefixes) and _same_ending(c.suffixes, me.suffixes)
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            return None
        if all(same(c) == same(found[0]) for c in found):
            return found[0]
        ids = ", ".join(str(c.current) for c in found)
        raise KustomizeError(self._where(f" found multiple possible referrals: {ids}"))

    def _where(self, message: str) -> str:
        return (
            f"updating name reference in '{self.spec.path}' field of "
            f"'{self.referrer.me.current}': {message}"
        )


def _role_ref_gvk(obj: dict[str, Any]) -> tuple[str, str, str] | None:
    """The group and kind a binding's roleRef names, as a selector (None: any)."""
    role_ref = obj.get("roleRef")
    if not isinstance(role_ref, dict) or "apiGroup" not in role_ref or "kind" not in role_ref:
        return None
    return (scalar_text(role_ref["apiGroup"]), "", scalar_text(role_ref["kind"]))


def _binding_namespaces(obj: dict[str, Any]) -> set[str]:
    """The namespaces of a RoleBinding's ServiceAccount subjects, whose objects it can see."""
    if obj.get("kind") != "RoleBinding":
        return set()
    subjects = obj.get("subjects")
    if not isinstance(subjects, list):
        return set()
    return {
        scalar_text(s["namespace"])
        for s in subjects
        if isinstance(s, dict) and "namespace" in s and s.get("kind") == "ServiceAccount"
    }
