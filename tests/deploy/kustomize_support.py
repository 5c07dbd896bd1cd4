"""Render the Kubernetes manifests (deploy/kubernetes) as a cluster would receive them.

The real kustomize does the rendering: `kustomize build` where it is installed, else the one
built into `kubectl kustomize` (this project's machines have kubectl; no kustomize binary is
packaged on PyPI, and Debian's kubectl is too old for `patches:`). A hand-written renderer
would test our reading of kustomize, not the manifests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
EXAMPLE = KUBERNETES / "overlays" / "example"
RENDER_TIMEOUT_S = 60

Resource = dict[str, Any]


def kustomize_command() -> list[str]:
    if (kustomize := shutil.which("kustomize")) is not None:
        return [kustomize, "build"]
    if (kubectl := shutil.which("kubectl")) is not None:
        return [kubectl, "kustomize"]
    raise RuntimeError(
        "neither kustomize nor kubectl is on PATH: install kubectl (it includes kustomize) "
        "to check deploy/kubernetes"
    )


def render(kustomization: Path) -> list[Resource]:
    """The resources `kubectl apply -k kustomization` would send."""
    done = subprocess.run(
        [*kustomize_command(), str(kustomization)],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"kustomize failed on {kustomization}:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def copy_with_example_secrets(into: Path) -> Path:
    """deploy/kubernetes copied under `into`, with the example overlay's git-ignored
    secrets.env made from its committed example; returns the copied kubernetes folder."""
    copy = into / "kubernetes"
    shutil.copytree(KUBERNETES, copy, ignore=shutil.ignore_patterns("secrets.env"))
    overlay = copy / EXAMPLE.relative_to(KUBERNETES)
    (overlay / "secrets.env").write_text((overlay / "secrets.env.example").read_text())
    return copy


def uncomment_single_replica_patches(kustomization: Path) -> None:
    """Turn on the overlay's commented "No ReadWriteMany storage?" patches, as its comment
    tells an operator to (and set the replica count to 1)."""
    text = kustomization.read_text()
    head, marker, tail = text.partition("  # No ReadWriteMany storage?")
    assert marker, f"{kustomization} has no commented single-replica patches"
    lines = [
        "  " + line[4:] if line.startswith(("  # -", "  #   ")) else line
        for line in tail.splitlines()
    ]
    head = head.replace("count: 2", "count: 1")
    kustomization.write_text(head + marker + "\n".join(lines) + "\n")


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def named(resources: list[Resource], kind: str, name: str) -> Resource:
    """The one resource of this kind whose name is `name`, or `name` with kustomize's hash."""
    pattern = re.compile(rf"{re.escape(name)}(-[a-z0-9]{{10}})?")
    found = [r for r in of_kind(resources, kind) if pattern.fullmatch(r["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(resources: list[Resource]) -> list[Resource]:
    return [
        r["spec"]["template"]["spec"]
        for r in resources
        if r["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    ]
