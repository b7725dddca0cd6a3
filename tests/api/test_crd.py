"""The generated CRDs: the same facts as Flux's own, and stable YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tidegate import api
from tidegate.api import OCIRepository

FLUX = Path(__file__).parent / "testdata" / "flux"


def without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [without_descriptions(item) for item in value]
    return value


def ocirepository_crd() -> dict[str, Any]:
    (crd,) = [c for c in api.crds() if c["metadata"]["name"] == OCIRepository.info.crd_name]
    return crd


def spec_schema() -> dict[str, Any]:
    schema = ocirepository_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec: dict[str, Any] = schema["properties"]["spec"]
    return spec


def test_ocirepository_matches_flux_structurally() -> None:
    facts = yaml.safe_load((FLUX / "ocirepositories.v1.yaml").read_text())
    crd = ocirepository_crd()
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == facts["name"]
    assert crd["spec"]["group"] == facts["group"]
    assert crd["spec"]["scope"] == facts["scope"]
    assert crd["spec"]["names"] == facts["names"]
    (version,) = crd["spec"]["versions"]
    expected = facts["version"]
    for key in ("name", "served", "storage", "subresources", "additionalPrinterColumns"):
        assert version[key] == expected[key], key
    generated = without_descriptions(version["schema"]["openAPIV3Schema"])
    # Field by field first, for a readable failure; then the whole tree.
    flux_spec = expected["openAPIV3Schema"]["properties"]["spec"]
    for name, schema in flux_spec["properties"].items():
        assert generated["properties"]["spec"]["properties"][name] == schema, name
    assert set(generated["properties"]["spec"]["properties"]) == set(flux_spec["properties"])
    assert generated == expected["openAPIV3Schema"]


def test_schema_facts() -> None:
    spec = spec_schema()
    props = spec["properties"]
    assert spec["required"] == ["interval", "url"]
    assert props["url"]["pattern"] == "^oci://.*$"
    assert props["interval"]["pattern"] == r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
    assert props["timeout"] == {
        "default": "60s",
        "description": props["timeout"]["description"],
        "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$",
        "type": "string",
    }
    assert props["provider"]["default"] == "generic"
    assert props["provider"]["enum"] == ["generic", "aws", "azure", "gcp"]
    assert props["layerSelector"]["properties"]["operation"]["enum"] == ["extract", "copy"]
    verify = props["verify"]
    assert verify["required"] == ["provider"]
    assert verify["properties"]["provider"]["default"] == "cosign"
    assert verify["properties"]["provider"]["enum"] == ["cosign", "notation"]
    assert verify["properties"]["matchOIDCIdentity"]["items"]["required"] == ["issuer", "subject"]
    assert set(props["ref"]["properties"]) == {"digest", "semver", "semverFilter", "tag"}
    assert props["secretRef"]["required"] == ["name"]
    assert "required" not in props["ref"]
    schema = ocirepository_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["status"]["default"] == {"observedGeneration": -1}
    assert "required" not in schema  # neither spec nor status is, as in Flux
    # Every property a user reads in `kubectl explain` is described.
    assert all(p.get("description") for p in props.values())


def test_crd_metadata() -> None:
    crd = ocirepository_crd()
    assert crd["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tidegate"
    assert [c["spec"]["names"]["kind"] for c in api.crds()] == [k.info.kind for k in api.KINDS]


def test_yaml_stream_is_stable_and_round_trips() -> None:
    text = api.crds_yaml()
    assert text == api.crds_yaml()
    assert text.startswith("---\n")
    assert "&id" not in text  # no YAML anchors for repeated sub-schemas
    assert list(yaml.safe_load_all(text)) == api.crds()


def test_callers_get_their_own_schema() -> None:
    first = OCIRepository.openapi_schema()
    first["properties"]["spec"]["properties"]["url"]["pattern"] = "changed"
    assert OCIRepository.openapi_schema()["properties"]["spec"]["properties"]["url"]["pattern"] == (
        "^oci://.*$"
    )
