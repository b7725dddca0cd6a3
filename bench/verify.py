"""Sign and verify an artifact with tidegate and, side by side, with cosign.

Both CLIs run as a user runs them, against the same local registry in the same run, on the
same artifact: `sign artifact --key` and `verify artifact --key` (tidegate) against
`cosign sign --key … --tlog-upload=false` and `cosign verify --key … --insecure-ignore-tlog`
(cosign 3, which Flux's source-controller embeds). Also the in-process verification the
controller runs per new revision. Prints medians and the ratio cosign / tidegate (above 1:
tidegate is faster).

    .venv/bin/python bench/verify.py [--runs N]

cosign comes from PATH or from the cache `tidegate dev prepare --cosign` fills.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tidegate import oci
from tidegate.oci import Reference, Registry
from tidegate.sign import CosignPolicy, load_public_keys, verify_cosign
from tidegate.testing import Environment, cosign_binary

# As on a user's machine: compiled bytecode may be cached; cosign finds no network here, so
# it must not try (no transparency log, no signing config).
PASSWORD = "bench"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["COSIGN_PASSWORD"] = PASSWORD


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=cwd)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed


async def in_process(registry: str, ref: Reference, public: bytes, runs: int) -> list[float]:
    policy = CosignPolicy(keys=load_public_keys(public))
    times = []
    async with Registry(registry, insecure=True, docker_config=False) as client:
        for _ in range(runs + 1):
            start = time.perf_counter()
            await verify_cosign(client, ref, policy)
            times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cosign = str(cosign_binary(print))
    tidegate = [sys.executable, "-m", "tidegate"]
    with tempfile.TemporaryDirectory(prefix="tidegate-bench-verify-") as scratch:
        work = Path(scratch)
        (work / "app").mkdir()
        (work / "app" / "deploy.yaml").write_text("kind: ConfigMap\n")
        env = Environment(work / "env", cluster=False)
        env.start()
        try:
            reg = env.registry
            subprocess.run([*tidegate, "generate", "key-pair"], cwd=work, env=ENV, check=True,
                           capture_output=True)  # fmt: skip

            async def push(name: str) -> str:
                async with Registry(reg, insecure=True, docker_config=False) as client:
                    ref = Reference.parse(f"{reg}/bench/{name}:v1")
                    return (await oci.push(client, ref, work / "app")).digest

            times: dict[tuple[str, str], list[float]] = {}
            for i in range(args.runs + 1):
                for tool in ("tidegate", "cosign"):
                    digest = asyncio.run(push(f"{tool}-{i}"))
                    url = f"{reg}/bench/{tool}-{i}@{digest}"
                    if tool == "tidegate":
                        sign = [*tidegate, "sign", "artifact", f"oci://{url}", "--key",
                                "cosign.key", "--insecure-registry"]  # fmt: skip
                        verify = [*tidegate, "verify", "artifact", f"oci://{url}", "--key",
                                  "cosign.pub", "--insecure-registry"]  # fmt: skip
                    else:
                        sign = [cosign, "sign", "--key", "cosign.key", "--tlog-upload=false",
                                "--use-signing-config=false", "--new-bundle-format=false",
                                "-y", url]  # fmt: skip
                        verify = [cosign, "verify", "--key", "cosign.pub",
                                  "--insecure-ignore-tlog=true", url]  # fmt: skip
                    signed, verified = timed(sign, work), timed(verify, work)
                    if i:  # the first round warms caches up and is not counted
                        times.setdefault((tool, "sign"), []).append(signed)
                        times.setdefault((tool, "verify"), []).append(verified)
            last = Reference.parse(f"{reg}/bench/tidegate-{args.runs}:v1")
            inside = asyncio.run(
                in_process(reg, last, (work / "cosign.pub").read_bytes(), args.runs)
            )
        finally:
            env.stop()

    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"{args.runs} runs each after a warm-up, interleaved; median seconds")
    print(f"{'':16}{'sign':>10}{'verify':>10}")
    for tool in ("tidegate", "cosign"):
        print(f"{tool:16}{median[(tool, 'sign')]:>10.3f}{median[(tool, 'verify')]:>10.3f}")
    ratios = [median[("cosign", op)] / median[("tidegate", op)] for op in ("sign", "verify")]
    print(f"{'cosign/tidegate':16}{ratios[0]:>9.2f}x{ratios[1]:>9.2f}x")
    print(f"tidegate in process (what the controller runs per revision): "
          f"{statistics.median(inside) * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
