"""Push and pull a 2,000-file / 20 MB tree with tidegate and, side by side, with flux.

Runs both CLIs the way a user would, against the same local registry (distribution) in the
same run, and prints the median times and the ratio flux / tidegate (above 1: tidegate is
faster). Every push goes to a fresh repository, so each one uploads all blobs.

    .venv/bin/python bench/artifacts.py [--runs N] [--files N] [--size BYTES]

flux comes from PATH or from the cache `tidegate dev prepare --flux` fills.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tidegate.testing import Environment, flux_binary

# The CLIs run as on a user's machine: Python may cache compiled bytecode (the warm-up round
# writes it), even where this shell forbids it.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def make_tree(root: Path, files: int, total: int) -> None:
    """YAML-like files of mixed, partly compressible text, spread over 40 folders."""
    rng = random.Random(42)
    per_file = total // files
    for i in range(files):
        folder = root / f"app-{i % 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        size = 0
        while size < per_file:
            line = f"  key-{rng.randrange(10_000)}: {rng.randbytes(12).hex()}\n"
            lines.append(line)
            size += len(line)
        (folder / f"manifest-{i:04d}.yaml").write_text("data:\n" + "".join(lines))


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=20_000_000)
    parser.add_argument(
        "--workdir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the tree, the registry's storage and the pulls live (default: /dev/shm, "
        "so that both tools are measured, not the disk's first-write costs)",
    )
    args = parser.parse_args()

    tools = {"tidegate": [sys.executable, "-m", "tidegate"], "flux": [str(flux_binary(print))]}
    times: dict[tuple[str, str], list[float]] = {
        (t, op): [] for t in tools for op in ("push", "pull")
    }
    with tempfile.TemporaryDirectory(prefix="tidegate-bench-", dir=args.workdir) as scratch:
        work = Path(scratch)
        tree = work / "tree"
        make_tree(tree, args.files, args.size)
        env = Environment(work / "env", cluster=False)
        env.start()
        try:
            reg = env.registry
            print(f"tree: {args.files} files, {args.size / 1e6:.0f} MB in {work}; "
                  f"registry {reg}; {args.runs} runs each after one warm-up, interleaved; "
                  "median seconds")  # fmt: skip
            # Interleaved, so that both tools meet the same cache state; the first round
            # warms up and is not counted.
            for i in range(args.runs + 1):
                for tool, cli in tools.items():
                    push = timed([*cli, "push", "artifact", f"oci://{reg}/bench/{tool}-{i}:v1",
                                  "--path", str(tree), "--source", "bench", "--revision", "v1",
                                  "--insecure-registry"])  # fmt: skip
                    out = work / f"pull-{tool}"
                    out.mkdir()
                    pull = timed([*cli, "pull", "artifact", f"oci://{reg}/bench/{tool}-{i}:v1",
                                  "-o", str(out), "--insecure-registry"])  # fmt: skip
                    shutil.rmtree(out)
                    if i:
                        times[(tool, "push")].append(push)
                        times[(tool, "pull")].append(pull)
        finally:
            env.stop()

    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"{'':14}{'push':>10}{'pull':>10}")
    for tool in tools:
        print(f"{tool:14}{median[(tool, 'push')]:>10.3f}{median[(tool, 'pull')]:>10.3f}")
    ratios = [median[("flux", op)] / median[("tidegate", op)] for op in ("push", "pull")]
    print(f"{'flux/tidegate':14}{ratios[0]:>9.2f}x{ratios[1]:>9.2f}x")


if __name__ == "__main__":
    main()
