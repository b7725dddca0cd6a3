"""Finding, installing or building the binaries of the test environment.

kube-apiserver comes from the Go module proxy, built once per machine with the machine's `go`
and cached under `~/.cache/tidegate/bin/<version>/`. etcd and the OCI registry (distribution)
come from Debian's packages `etcd-server` and `docker-registry`, installed with apt when missing.
`KUBEBUILDER_ASSETS` (a folder holding `kube-apiserver` and `etcd`, the envtest convention) takes
precedence over all of that. Flux's own programs, peers in compatibility tests and benchmarks
(the `flux` CLI, source-controller), are built the same way, into `~/.cache/tidegate/bin/`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "1.34.4"
# kube-apiserver 1.34 talks etcd's v3 API and runs against any etcd 3.4 or newer; Debian
# bookworm ships 3.4.23. Older (or missing) etcd is built from the module proxy instead.
MIN_ETCD = (3, 4, 0)
ETCD_BUILD_VERSION = "3.5.21"
# The flux CLI, as a peer for compatibility tests and benchmarks.
FLUX_VERSION = "2.9.5"
# Flux's source-controller, the version flux v2.9.5 installs (its manifests name the release
# and its go.mod requires github.com/fluxcd/source-controller/api at the same version).
SOURCE_CONTROLLER_VERSION = "1.9.5"
# Flux's kustomize-controller, the version flux v2.9.5 installs (its go.mod requires
# github.com/fluxcd/kustomize-controller/api at the same version).
KUSTOMIZE_CONTROLLER_VERSION = "1.9.5"
# cosign, the peer of tidegate's signatures in compatibility tests: the version Flux's
# source-controller v1.9.5 verifies with (its go.mod requires github.com/sigstore/cosign/v3 v3.0.6).
COSIGN_VERSION = "3.0.6"
# notation-go, the library `notation sign` signs with and source-controller v1.9.5 verifies with
# (its go.mod requires github.com/notaryproject/notation-go v1.3.2). The notation CLI module
# itself is refused by the Go module proxy ("403 This module version is not available").
NOTATION_GO_VERSION = "1.3.2"

Log = Callable[[str], None]


class MissingPrerequisite(RuntimeError):
    """Something the test environment needs is absent and cannot be installed from here."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    registry: Path


def cache_dir() -> Path:
    """`$TIDEGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/tidegate`, else `~/.cache/tidegate`."""
    explicit = os.environ.get("TIDEGATE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tidegate"


def find_binaries(log: Log = lambda _msg: None, *, cluster: bool = True) -> Binaries:
    """Locate every binary, installing or building what is missing (slow only the first time).

    With `cluster=False` only the registry is looked for (the other paths are left empty).
    """
    registry = _debian_binary("docker-registry", "docker-registry", log)
    if not cluster:
        return Binaries(Path(), Path(), registry)
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        folder = Path(assets)
        wanted = [folder / "kube-apiserver", folder / "etcd"]
        absent = [str(p) for p in wanted if not os.access(p, os.X_OK)]
        if absent:
            raise MissingPrerequisite(
                f"KUBEBUILDER_ASSETS={assets} lacks {', '.join(absent)}; "
                "point it at a folder holding kube-apiserver and etcd, or unset it"
            )
        return Binaries(wanted[0], wanted[1], registry)
    return Binaries(kube_apiserver_binary(log), etcd_binary(log), registry)


def kube_apiserver_binary(log: Log) -> Path:
    version = f"v{KUBERNETES_VERSION}"
    target = cache_dir() / "bin" / version / "kube-apiserver"
    if os.access(target, os.X_OK):
        return target
    minor = KUBERNETES_VERSION.split(".")[1]
    stamp = "k8s.io/component-base/version"
    ldflags = " ".join(
        [
            "-s -w",
            f"-X {stamp}.gitVersion={version}",
            f"-X {stamp}.gitMajor=1",
            f"-X {stamp}.gitMinor={minor}",
            f"-X {stamp}.gitTreeState=clean",
            f"-X {stamp}.buildDate=1970-01-01T00:00:00Z",
        ]
    )
    # k8s.io/kubernetes points its staging modules (k8s.io/api, ...) at ./staging/src; the
    # published copies of those modules carry the same code at v0.<minor>.<patch>.
    staging = "v0." + KUBERNETES_VERSION.split(".", 1)[1]
    go_build(
        "k8s.io/kubernetes",
        version,
        "k8s.io/kubernetes/cmd/kube-apiserver",
        target,
        ldflags=ldflags,
        replace_version=lambda _module: staging,
        log=log,
    )
    return target


def etcd_binary(log: Log) -> Path:
    found = shutil.which("etcd") or _executable("/usr/bin/etcd")
    if found is None and _can_apt():
        _apt_install("etcd-server", log)
        found = shutil.which("etcd") or "/usr/bin/etcd"
    if found and (_etcd_version(Path(found)) or (0,)) >= MIN_ETCD:
        return Path(found)
    version = f"v{ETCD_BUILD_VERSION}"
    target = cache_dir() / "bin" / f"etcd-{version}" / "etcd"
    if os.access(target, os.X_OK):
        return target
    go_build(
        "go.etcd.io/etcd/v3",
        version,
        "go.etcd.io/etcd/v3",
        target,
        ldflags="-s -w",
        replace_version=lambda _module: version,
        log=log,
    )
    return target


def flux_binary(log: Log) -> Path:
    """The `flux` CLI: from PATH, else built from the Go module proxy once and cached."""
    found = shutil.which("flux")
    if found:
        return Path(found)
    version = f"v{FLUX_VERSION}"
    target = cache_dir() / "bin" / f"flux-{version}" / "flux"
    if os.access(target, os.X_OK):
        return target
    go = _go_binary(f"the flux CLI {version}")
    with _locked(target.parent / ".build.lock"):
        if os.access(target, os.X_OK):
            return target
        log(f"building flux {version} with {go} (once per machine; a few minutes)")
        env = _go_env()
        with tempfile.TemporaryDirectory(prefix="tidegate-flux-") as scratch:
            work = Path(scratch)
            (work / "go.mod").write_text(SCRATCH_MODULE)
            info = json.loads(
                _go(go, ["mod", "download", "-json", f"github.com/fluxcd/flux2/v2@{version}"],
                    work, env)
            )  # fmt: skip
            # flux embeds its install manifests from cmd/flux/manifests, which its release
            # build generates and the module zip lacks; the artifact commands never read them,
            # so a copy of the source with a placeholder builds with flux's own go.mod.
            source = work / "flux2"
            shutil.copytree(info["Dir"], source)
            for folder in source.rglob("*"):
                if folder.is_dir():
                    folder.chmod(0o755)
            manifests = source / "cmd" / "flux" / "manifests"
            manifests.mkdir(parents=True, exist_ok=True)
            (manifests / "placeholder.yaml").write_text("# not used by artifact commands\n")
            partial = target.with_suffix(".partial")
            ldflags = f"-s -w -X main.VERSION={FLUX_VERSION}"
            _go(go, ["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial),
                     "./cmd/flux"], source, env)  # fmt: skip
            partial.replace(target)
        log(f"built {target}")
    return target


def source_controller_binary(log: Log) -> Path:
    """Flux's source-controller, built once from the Go module proxy and cached in
    `<cache>/bin/source-controller-v<version>/`, its CRDs in `crds/` beside it."""
    return _flux_controller("source-controller", SOURCE_CONTROLLER_VERSION, log)


def source_controller_crds(log: Log) -> Path:
    """The folder of source-controller's CRD YAML files (building it first if need be)."""
    return source_controller_binary(log).parent / "crds"


def kustomize_controller_binary(log: Log) -> Path:
    """Flux's kustomize-controller, built once from the Go module proxy and cached in
    `<cache>/bin/kustomize-controller-v<version>/`, its CRDs in `crds/` beside it."""
    return _flux_controller("kustomize-controller", KUSTOMIZE_CONTROLLER_VERSION, log)


def kustomize_controller_crds(log: Log) -> Path:
    """The folder of kustomize-controller's CRD YAML files (building it first if need be)."""
    return kustomize_controller_binary(log).parent / "crds"


def cosign_binary(log: Log) -> Path:
    """The `cosign` CLI: from PATH when it is cosign 3, else v<COSIGN_VERSION> built once from
    the Go module proxy and cached in `<cache>/bin/cosign-v<version>/`."""
    found = shutil.which("cosign")
    if found and _cosign_major(found) == COSIGN_VERSION.split(".")[0]:
        return Path(found)
    version = f"v{COSIGN_VERSION}"
    target = cache_dir() / "bin" / f"cosign-{version}" / "cosign"
    if os.access(target, os.X_OK):
        return target
    # As cosign's Makefile builds it (static, -trimpath), with the version `cosign version` shows.
    stamp = "sigs.k8s.io/release-utils/version"
    go_build_in_module(
        "github.com/sigstore/cosign/v3",
        version,
        "./cmd/cosign",
        target,
        ldflags=f"-s -w -X {stamp}.gitVersion={version} -X {stamp}.gitTreeState=clean",
        replace_version=lambda _module: version,
        log=log,
    )
    return target


def _cosign_major(cosign: str) -> str | None:
    try:
        out = subprocess.run(
            [cosign, "version", "--json"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        return str(json.loads(out)["gitVersion"]).removeprefix("v").split(".")[0]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None


def notation_signer_binary(log: Log) -> Path:
    """`tidegate-notation-sign`, which signs an artifact in a registry as `notation sign` does,
    with notation-go v<NOTATION_GO_VERSION>: built once from `NOTATION_SIGNER_SOURCE` and cached
    in `<cache>/bin/tidegate-notation-sign-v<version>-<source hash>/`.

    Usage: `tidegate-notation-sign --key KEY.pem --cert CHAIN.pem [--envelope jws|cose]
    [--insecure-registry] [--expiry 1h] [--force-referrers-tag=false] [--user-metadata K=V]
    HOST/REPO@sha256:…`. As the notation CLI (1.2 and later), it stores the signature with the
    referrers tag schema unless `--force-referrers-tag=false`, which uses the referrers API
    when the registry has it.
    """
    version = f"v{NOTATION_GO_VERSION}"
    source_hash = hashlib.sha256(NOTATION_SIGNER_SOURCE.encode()).hexdigest()[:12]
    name = "tidegate-notation-sign"
    target = cache_dir() / "bin" / f"{name}-{version}-{source_hash}" / name
    if os.access(target, os.X_OK):
        return target
    go_build_program(
        NOTATION_SIGNER_SOURCE, {"github.com/notaryproject/notation-go": version}, target, log=log
    )
    return target


def go_build_program(source: str, requires: dict[str, str], target: Path, *, log: Log) -> None:
    """Build a Go program given as the text of its `main` package into `target`, in a scratch
    module that requires `requires` (module path → version) and, through `go mod tidy`, the
    versions those modules name for everything else."""
    go = _go_binary(target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".build.lock"):
        if os.access(target, os.X_OK):
            return  # built by another process while this one waited
        log(f"building {target.name} with {go} (once per machine; a minute or two)")
        env = _go_env()
        with tempfile.TemporaryDirectory(prefix="tidegate-gobuild-") as scratch:
            work = Path(scratch)
            required = "".join(f"\t{path} {v}\n" for path, v in sorted(requires.items()))
            (work / "go.mod").write_text(f"{SCRATCH_MODULE}\nrequire (\n{required})\n")
            (work / "main.go").write_text(source)
            _go(go, ["mod", "tidy"], work, env)
            partial = target.with_suffix(".partial")
            _go(go, ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."],
                work, env)  # fmt: skip
            partial.replace(target)
        log(f"built {target}")


# The Go program behind `notation_signer_binary`: `notation sign` (cmd/notation/sign.go and
# registry.go of the notation CLI) with the signing key given as files rather than by name from
# notation's configuration. The signature, its envelope and where it is stored come from
# notation-go's `notation.Sign` and oras-go, as with the CLI.
NOTATION_SIGNER_SOURCE = r"""
// tidegate-notation-sign signs an artifact in a registry as `notation sign` does,
// with a local key and certificate chain, through notation-go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

const usage = "usage: tidegate-notation-sign --key KEY.pem --cert CHAIN.pem " +
	"[--envelope jws|cose] [--insecure-registry] [--expiry D] HOST/REPO(@sha256:...|:TAG)"

type metadata map[string]string

func (m metadata) String() string { return fmt.Sprint(map[string]string(m)) }

func (m metadata) Set(value string) error {
	key, val, ok := strings.Cut(value, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q is not KEY=VALUE", value)
	}
	m[key] = val
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run() error {
	userMetadata := metadata{}
	key := flag.String("key", "", "PEM private key")
	cert := flag.String("cert", "", "PEM certificate chain, leaf first")
	format := flag.String("envelope", "jws", "signature envelope format: jws or cose")
	plainHTTP := flag.Bool("insecure-registry", false, "registry access via plain HTTP")
	expiry := flag.Duration("expiry", 0, "signature expiry duration, e.g. 24h; 0: none")
	// notation sign's default: the referrers tag schema; with --force-referrers-tag=false
	// the referrers API when the registry has it, else the tag schema.
	forceTag := flag.Bool("force-referrers-tag", true,
		"store the signature with the referrers tag schema")
	username := flag.String("username", os.Getenv("NOTATION_USERNAME"), "registry user")
	password := flag.String("password", os.Getenv("NOTATION_PASSWORD"), "registry password")
	flag.Var(userMetadata, "user-metadata", "KEY=VALUE for the signed payload (repeatable)")
	// Flags may follow the reference, as with notation's command line.
	var positional []string
	for args := os.Args[1:]; ; {
		_ = flag.CommandLine.Parse(args) // exits on errors
		if args = flag.Args(); len(args) == 0 {
			break
		}
		positional, args = append(positional, args[0]), args[1:]
	}
	if len(positional) != 1 || *key == "" || *cert == "" {
		return errors.New(usage)
	}
	reference := positional[0]
	mediaType, ok := map[string]string{
		"jws":  jws.MediaTypeEnvelope,
		"cose": cose.MediaTypeEnvelope,
	}[*format]
	if !ok {
		return fmt.Errorf("signature format %q is not supported: use jws or cose", *format)
	}
	ctx := context.Background()

	ref, err := registry.ParseReference(reference)
	if err != nil {
		return err
	}
	cred := auth.Credential{Username: *username, Password: *password}
	if cred.Username == "" {
		cred = auth.Credential{RefreshToken: *password}
	}
	client := &auth.Client{
		Credential: auth.StaticCredential(ref.Host(), cred),
		Cache:      auth.NewCache(),
		ClientID:   "notation",
	}
	client.SetUserAgent("tidegate-notation-sign (notation-go)")
	remoteRepo := &remote.Repository{Client: client, Reference: ref, PlainHTTP: *plainHTTP}
	if *forceTag {
		if err := remoteRepo.SetReferrersCapability(false); err != nil {
			return err
		}
	}
	repo := notationregistry.NewRepository(remoteRepo)

	localSigner, err := signer.NewGenericSignerFromFiles(*key, *cert)
	if err != nil {
		return err
	}
	desc, err := repo.Resolve(ctx, ref.Reference)
	if err != nil {
		return fmt.Errorf("failed to resolve %s: %w", reference, err)
	}
	if ref.ValidateReferenceAsDigest() != nil {
		fmt.Fprintf(os.Stderr, "Warning: Always sign the artifact using digest(@sha256:...) "+
			"rather than a tag(:%s) because tags are mutable and a tag reference can point "+
			"to a different artifact than the one signed.\n", ref.Reference)
	}
	opts := notation.SignOptions{
		SignerSignOptions: notation.SignerSignOptions{
			SignatureMediaType: mediaType,
			ExpiryDuration:     *expiry,
		},
		ArtifactReference: desc.Digest.String(),
		UserMetadata:      userMetadata,
	}
	signed := fmt.Sprintf("%s/%s@%s", ref.Registry, ref.Repository, desc.Digest)
	if _, err := notation.Sign(ctx, localSigner, repo, opts); err != nil {
		// As notation sign: the signature is stored; only the removal of the superseded
		// referrers index failed.
		var pushFailed notation.ErrorPushSignatureFailed
		dangling := "failed to delete dangling referrers index"
		if !errors.As(err, &pushFailed) || !strings.Contains(err.Error(), dangling) {
			return err
		}
		fmt.Fprintln(os.Stderr, "Warning: Removal of outdated referrers index from remote "+
			"registry failed. Garbage collection may be required.")
	}
	fmt.Println("Successfully signed", signed)
	return nil
}
"""


def _flux_controller(name: str, version: str, log: Log) -> Path:
    """One of Flux's controllers (`github.com/fluxcd/<name>`), with the module's CRDs
    (`config/crd/bases/*.yaml`) copied into `crds/` beside the binary."""
    tagged = f"v{version}"
    folder = cache_dir() / "bin" / f"{name}-{tagged}"
    target = folder / name
    if os.access(target, os.X_OK) and _has_yaml(folder / "crds"):
        return target
    # The module's go.mod points github.com/fluxcd/<name>/api at ./api, a nested module that
    # the module zip leaves out; it is published at the same version.
    go_build_in_module(
        f"github.com/fluxcd/{name}",
        tagged,
        ".",
        target,
        ldflags="-s -w",
        replace_version=lambda _module: tagged,
        log=log,
        keep={"config/crd/bases": folder / "crds"},
    )
    return target


def go_build_in_module(
    module: str,
    version: str,
    package: str,
    target: Path,
    *,
    ldflags: str,
    replace_version: Callable[[str], str],
    log: Log,
    keep: dict[str, Path] | None = None,
) -> None:
    """Build `package` (relative to the module root: `.`, `./cmd/x`) inside a copy of
    `module@version` off the Go module proxy, with the module's own go.mod and go.sum.

    Unlike `go_build`'s scratch module, this keeps the module's `replace` directives that
    point at other modules (forks, pinned commits), which a dependent module would ignore.
    Those that point at a local folder, which the module zip lacks (nested modules), are
    mapped to the published module at `replace_version(path)`. `keep` copies the YAML files
    of folders of the module (relative path → destination folder), e.g. CRD manifests.
    """
    go = shutil.which("go") or _executable("/usr/local/go/bin/go")
    if go is None:
        raise MissingPrerequisite(
            f"building {module}@{version} needs Go on PATH: install it (https://go.dev/dl/), "
            "in the version its go.mod names or newer"
        )
    keep = keep or {}
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".build.lock"):
        if os.access(target, os.X_OK) and all(_has_yaml(p) for p in keep.values()):
            return  # built by another process while this one waited
        env = _go_env("-mod=mod -buildvcs=false")
        with tempfile.TemporaryDirectory(prefix="tidegate-gobuild-") as scratch:
            work = Path(scratch)
            (work / "go.mod").write_text(SCRATCH_MODULE)
            info = json.loads(_go(go, ["mod", "download", "-json", f"{module}@{version}"],
                                  work, env))  # fmt: skip
            for relative, destination in keep.items():
                _copy_yaml(Path(info["Dir"]) / relative, destination)
            if os.access(target, os.X_OK):
                return
            _check_go_version(go, Path(info["GoMod"]).read_text(), f"{module}@{version}", work, env)
            log(f"building {module}@{version} with {go} (once per machine; a few minutes)")
            source = work / "src"
            shutil.copytree(info["Dir"], source)
            # The module cache is read only; go.sum may gain the published nested modules.
            for entry in [source, *source.rglob("*")]:
                if entry.is_dir() or entry.name in ("go.mod", "go.sum"):
                    entry.chmod(0o755 if entry.is_dir() else 0o644)
            gomod = (source / "go.mod").read_text()
            local = r"^(?:replace\s+|\s+)(\S+)(?:\s+v\S+)?\s+=>\s+\.\.?/\S*\s*$"
            for path in re.findall(local, gomod, re.M):
                edit = f"-replace={path}={path}@{replace_version(path)}"
                _go(go, ["mod", "edit", edit], source, env)
            partial = target.with_suffix(".partial")
            build = ["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), package]
            tried: set[tuple[str, str]] = set()
            while True:
                result = _run_go(go, build, source, env)
                if result.returncode == 0:
                    break
                missing = set(_UNAVAILABLE.findall(result.stderr)) - tried
                if not missing:
                    raise MissingPrerequisite(
                        f"'go {' '.join(build)}' failed:\n{_tail(result.stderr + result.stdout)}"
                    )
                for path, wanted in sorted(missing):
                    tried.add((path, wanted))
                    other = _earlier_patch(go, path, wanted, work, env)
                    log(f"{path}@{wanted} is not on the module proxy; building with {other}")
                    _go(go, ["mod", "edit", f"-replace={path}@{wanted}={path}@{other}"],
                        source, env)  # fmt: skip
            partial.replace(target)
        log(f"built {target}")


# `go build` when the module proxy lists a version but refuses its zip (HTTP 403/404/410).
_UNAVAILABLE = re.compile(r"^\S+: (\S+)@(v\S+): reading \S+\.zip: (?:403|404|410)\b", re.M)


def _earlier_patch(go: str, path: str, wanted: str, work: Path, env: dict[str, str]) -> str:
    """The newest earlier patch release of `path` (same major.minor) that the proxy serves.

    The proxy lists a few module versions whose source it refuses to serve: for
    github.com/fluxcd/pkg/artifact v0.18.3, which source-controller v1.9.5 requires, it
    answers "403 This module version is not available" (v0.18.2 too). Their go.mod differs
    from v0.18.1's only in dependency versions, which the main module's go.mod pins anyway;
    the build says which version it took instead.
    """
    match = re.fullmatch(r"(v\d+\.\d+\.)(\d+)", wanted)
    if match:
        for patch in range(int(match[2]) - 1, -1, -1):
            candidate = f"{match[1]}{patch}"
            if _run_go(go, ["mod", "download", f"{path}@{candidate}"], work, env).returncode == 0:
                return candidate
    raise MissingPrerequisite(
        f"{path}@{wanted} is not available from the Go module proxy (GOPROXY="
        f"{env.get('GOPROXY') or 'default'}), nor an earlier patch release of it"
    )


def _check_go_version(go: str, gomod: str, what: str, work: Path, env: dict[str, str]) -> None:
    """Fail clearly when the module's go.mod asks for a newer Go than the machine's (with
    GOTOOLCHAIN=local, go would only say so halfway through the build)."""
    wanted = re.search(r"^go\s+(\d+(?:\.\d+)*)\s*$", gomod, re.M)
    have = re.match(r"go(\d+(?:\.\d+)*)", _go(go, ["env", "GOVERSION"], work, env).strip())
    if not wanted or not have:
        return
    if _numbers(have[1]) < _numbers(wanted[1]):
        raise MissingPrerequisite(
            f"building {what} needs Go {wanted[1]} or newer; {go} is Go {have[1]}: "
            "install a newer Go (https://go.dev/dl/)"
        )


def _numbers(version: str) -> tuple[int, ...]:
    parts = [int(part) for part in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def _has_yaml(folder: Path) -> bool:
    return any(folder.glob("*.yaml"))


def _copy_yaml(source: Path, folder: Path) -> None:
    """Make `folder` hold copies of the YAML files of `source` (replaced as a whole)."""
    if not source.is_dir():
        raise MissingPrerequisite(f"{source} is missing from the downloaded module")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for item in sorted(source.glob("*.yaml")):
        shutil.copyfile(item, partial / item.name)
    shutil.rmtree(folder, ignore_errors=True)
    partial.replace(folder)


# The go.mod of the scratch module builds run in.
SCRATCH_MODULE = "module tidegate.local/build\n\ngo 1.24.0\n"


def _go_env(flags: str = "") -> dict[str, str]:
    """The environment for `go`: the machine's toolchain only (no downloads of another), no
    cgo (static binaries), and `flags` as GOFLAGS."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    if flags:
        env["GOFLAGS"] = flags
    return env


def _go_binary(purpose: str) -> str:
    go = shutil.which("go") or _executable("/usr/local/go/bin/go")
    if go is None:
        raise MissingPrerequisite(
            f"building {purpose} needs Go (1.24 or newer) on PATH: install it "
            "(https://go.dev/dl/), or set KUBEBUILDER_ASSETS to a folder holding "
            "kube-apiserver and etcd"
        )
    return go


def _etcd_version(path: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    match = re.search(r"etcd Version: (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else None


def _debian_binary(package: str, command: str, log: Log) -> Path:
    found = shutil.which(command) or _executable(f"/usr/bin/{command}")
    if found:
        return Path(found)
    if not _can_apt():
        raise MissingPrerequisite(
            f"'{command}' is missing: install the Debian package '{package}' "
            f"(apt-get install {package})"
        )
    _apt_install(package, log)
    if not os.access(f"/usr/bin/{command}", os.X_OK):
        raise MissingPrerequisite(f"installing '{package}' did not provide /usr/bin/{command}")
    return Path(f"/usr/bin/{command}")


def _executable(path: str) -> str | None:
    return path if os.access(path, os.X_OK) else None


def _can_apt() -> bool:
    return shutil.which("apt-get") is not None and os.geteuid() == 0


def _apt_install(package: str, log: Log) -> None:
    log(f"installing Debian package {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _locked(cache_dir() / "apt.lock"):
        install = ["apt-get", "install", "-y", "--no-install-recommends", package]
        result = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            # A new machine may have no package lists yet.
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
            result = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise MissingPrerequisite(
                f"apt-get install {package} failed:\n{_tail(result.stdout + result.stderr)}"
            )


def go_build(
    module: str,
    version: str,
    package: str,
    target: Path,
    *,
    ldflags: str,
    replace_version: Callable[[str], str],
    log: Log,
) -> None:
    """Build `package` from `module@version` off the Go module proxy into `target`.

    `go install pkg@version` refuses modules whose go.mod has `replace` directives (Kubernetes
    and etcd both point sibling modules at local folders), so the build runs in a scratch module
    that requires `module@version` and maps each such sibling to its published version.
    """
    go = _go_binary(f"{package}@{version} for the test environment")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".build.lock"):
        if os.access(target, os.X_OK):
            return  # built by another process while this one waited
        log(f"building {package}@{version} with {go} (once per machine; a few minutes)")
        env = _go_env("-mod=mod")
        with tempfile.TemporaryDirectory(prefix="tidegate-gobuild-") as scratch:
            work = Path(scratch)
            (work / "go.mod").write_text(SCRATCH_MODULE)
            gomod = _module_gomod(go, module, version, work, env)
            replaces = [
                f"\t{path} => {path} {replace_version(path)}"
                for path in re.findall(r"^\s*(\S+)\s+=>\s+\.\.?/\S*\s*$", gomod, re.M)
            ]
            (work / "go.mod").write_text(
                "module tidegate.local/build\n\ngo 1.24.0\n\n"
                f"require {module} {version}\n\nreplace (\n" + "\n".join(replaces) + "\n)\n"
            )
            _go(go, ["get", f"{package}@{version}"], work, env)
            partial = target.with_suffix(".partial")
            _go(
                go,
                ["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), package],
                work,
                env,
            )
            partial.replace(target)
        log(f"built {target}")


def _module_gomod(go: str, module: str, version: str, work: Path, env: dict[str, str]) -> str:
    info = json.loads(_go(go, ["mod", "download", "-json", f"{module}@{version}"], work, env))
    return Path(info["GoMod"]).read_text()


def _run_go(
    go: str, args: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [go, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def _go(go: str, args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = _run_go(go, args, cwd, env)
    if result.returncode != 0:
        raise MissingPrerequisite(
            f"'go {' '.join(args)}' failed:\n{_tail(result.stderr + result.stdout)}"
        )
    return result.stdout


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
