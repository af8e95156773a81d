"""Kubernetes' own programs, built from their Go modules once per machine and cached.

The control plane under the tests is the real one: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kubectl and CoreDNS, at the pinned versions below, compiled here with ``go build``
(no download site is reachable, the Go module proxy is). k8s.io/kubernetes points its ``k8s.io/*``
staging modules at ``./staging`` in its go.mod, which a dependency's replace directives cannot
do, so the build module written here requires k8s.io/kubernetes and replaces each staging module
with its published ``v0.x`` twin, read off kubernetes' own go.mod. etcd's ``main`` lives in a
module with the same problem, so a two-line main of ours calls ``etcdmain.Main``. The real node's
kubelet and kube-proxy come from the same module (a build of their own), containerd 2.4 with
ctr and its runc shim from containerd's (tests/cluster/realnode). Two more Go programs, not the
cluster's, are built the same way: actionlint and go-httpbin (tests/http).

The binaries go to ``~/.cache/gaggle/k8s/<version>/bin`` (``GAGGLE_CACHE`` moves the root), outside
any checkout: a second run, and CI's fresh clone on the same machine, build nothing. A lock makes
two concurrent callers build once. Go's own caches (modules, compiled packages) sit beside.

    python -m tests.cluster.binaries          # build what is missing, print where it is
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KUBERNETES = "v1.37.2"
STAGING = "v0.37.2"  # the staging modules' version for KUBERNETES
ETCD = "v3.6.16"
COREDNS = "v1.15.0"
ACTIONLINT = "v1.7.12"  # not the cluster's: the linter of .github/workflows, a Go module too
HTTPBIN = "v2.26.0"  # not the cluster's either: the HTTP clients' referee server (tests/http)
CONTAINERD = "v2.4.2"  # the real node's container runtime (tests/cluster/realnode)
# the real node's NetworkPolicy controller (realnode/policy.py); the proxy serves only this
KUBE_ROUTER = "v2.1.0"
GO_DIRECTIVE = "1.26.0"
RELEASED = "2026-10-27T12:01:04Z"  # KUBERNETES' date on the module proxy, as its buildDate

CACHE = Path(os.environ.get("GAGGLE_CACHE", Path.home() / ".cache" / "gaggle"))
ROOT = CACHE / "k8s" / KUBERNETES
BIN = ROOT / "bin"

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
NODE_COMMANDS = ("kubelet", "kube-proxy")  # the real node's, a build of their own
CONTAINERD_COMMANDS = ("containerd", "ctr", "containerd-shim-runc-v2")
# containerd's release tags minus the C-only storage drivers (CGO is off, as in its shim build)
CONTAINERD_TAGS = ("no_btrfs", "no_devmapper", "no_zfs", "urfave_cli_no_docs")
NAMES = (
    *KUBE_COMMANDS,
    "etcd",
    "coredns",
    "actionlint",
    "go-httpbin",
    *NODE_COMMANDS,
    *CONTAINERD_COMMANDS,
    "kube-router",
)

NO_GO = (
    "Go is not installed (no `go` on PATH, nor /usr/local/go/bin/go): the cluster tests build "
    "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and CoreDNS from "
    "their Go modules. Install Go 1.26 or newer (Debian 12's golang-go is too old) and retry."
)

ETCD_MAIN = """\
// etcd's own main, which its root module's replace directives keep us from building directly.
package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


class BuildError(RuntimeError):
    """A build failed: the message names the module and carries Go's own output."""


@dataclass(frozen=True)
class Build:
    """One ``go build`` in a module of ours: which binaries it makes and how."""

    module: str  # the Go module the binaries come from, for messages
    version: str
    outputs: tuple[str, ...]
    write_module: Callable[[Path], list[str]]  # lays out the module, returns the packages
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # go build -tags


GO_FALLBACK = Path("/usr/local/go/bin/go")  # where the Go distribution installs itself


def go() -> str:
    found = shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.exists() else None)
    if found is None:
        raise BuildError(NO_GO)
    return found


def _run_go(folder: Path, args: list[str], log: Callable[[str], None], what: str) -> str:
    """Run go in ``folder``; echo progress every 20 s; on failure raise with Go's error."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    process = subprocess.Popen(
        [go(), *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    started = time.monotonic()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while True:
        try:  # (not reader.join: its output may end before the process does, then it spun)
            process.wait(20)
            break
        except subprocess.TimeoutExpired:
            compiled = sum(1 for line in lines if not line.startswith("go: "))
            log(f"  … {what}: {int(time.monotonic() - started)} s, {compiled} packages so far")
    reader.join()
    if process.returncode != 0:
        errors = [line for line in lines if not line.startswith("go: downloading")]
        tail = "\n".join(errors[-40:])
        raise BuildError(
            f"building {what} failed (go {' '.join(args[:2])} … exit {process.returncode}):\n{tail}"
        )
    return "\n".join(lines)


def _kubernetes_module(folder: Path) -> list[str]:
    """go.mod requiring k8s.io/kubernetes with each staging module replaced by its release."""
    _kubernetes_gomod(folder)
    return [f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS]


def _kubernetes_node_module(folder: Path) -> list[str]:
    """The same module as the control plane's (so Go's cache serves the shared packages), for
    the kubelet and kube-proxy."""
    _kubernetes_gomod(folder)
    return [f"k8s.io/kubernetes/cmd/{name}" for name in NODE_COMMANDS]


def _kubernetes_gomod(folder: Path) -> None:
    gomod = _download_gomod("k8s.io/kubernetes", KUBERNETES, folder)
    staging = [line.split()[0] for line in gomod.splitlines() if "=> ./staging/" in line]
    if not staging:
        raise BuildError(f"k8s.io/kubernetes {KUBERNETES}: no staging replaces found in its go.mod")
    replaces = "".join(f"\t{module} => {module} {STAGING}\n" for module in staging)
    (folder / "go.mod").write_text(
        f"module gaggle.test/k8s-binaries\n\ngo {GO_DIRECTIVE}\n\ngodebug default=go1.26\n\n"
        f"require k8s.io/kubernetes {KUBERNETES}\n\nreplace (\n{replaces})\n"
    )


def _etcd_module(folder: Path) -> list[str]:
    (folder / "go.mod").write_text(
        f"module gaggle.test/etcd\n\ngo {GO_DIRECTIVE}\n\n"
        f"require go.etcd.io/etcd/server/v3 {ETCD}\n"
    )
    (folder / "main.go").write_text(ETCD_MAIN)
    return ["."]


def _coredns_module(folder: Path) -> list[str]:
    (folder / "go.mod").write_text(
        f"module gaggle.test/coredns\n\ngo {GO_DIRECTIVE}\n\n"
        f"require github.com/coredns/coredns {COREDNS}\n"
    )
    return ["github.com/coredns/coredns"]


def _actionlint_module(folder: Path) -> list[str]:
    (folder / "go.mod").write_text(
        f"module gaggle.test/actionlint\n\ngo {GO_DIRECTIVE}\n\n"
        f"require github.com/rhysd/actionlint {ACTIONLINT}\n"
    )
    return ["github.com/rhysd/actionlint/cmd/actionlint"]


def _httpbin_module(folder: Path) -> list[str]:
    (folder / "go.mod").write_text(
        f"module gaggle.test/go-httpbin\n\ngo {GO_DIRECTIVE}\n\n"
        f"require github.com/mccutchen/go-httpbin/v2 {HTTPBIN}\n"
    )
    return ["github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin"]


def _containerd_module(folder: Path) -> list[str]:
    (folder / "go.mod").write_text(
        f"module gaggle.test/containerd\n\ngo {GO_DIRECTIVE}\n\n"
        f"require github.com/containerd/containerd/v2 {CONTAINERD}\n"
    )
    return [f"github.com/containerd/containerd/v2/cmd/{name}" for name in CONTAINERD_COMMANDS]


def _kube_router_module(folder: Path) -> list[str]:
    (folder / "go.mod").write_text(
        f"module gaggle.test/kube-router\n\ngo {GO_DIRECTIVE}\n\n"
        f"require github.com/cloudnativelabs/kube-router/v2 {KUBE_ROUTER}\n"
    )
    return ["github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"]


def _download_gomod(module: str, version: str, folder: Path) -> str:
    """The go.mod of ``module@version`` from the module proxy (through Go's module cache)."""
    out = subprocess.run(
        [go(), "mod", "download", "-json", f"{module}@{version}"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "GOTOOLCHAIN": "local"},
        timeout=900,
    )
    if out.returncode != 0:
        raise BuildError(f"downloading {module}@{version} failed:\n{out.stdout}{out.stderr}")
    import json

    return Path(json.loads(out.stdout)["GoMod"]).read_text()


def _version_flags() -> tuple[str, ...]:
    """What Kubernetes' release build stamps in with -X, so that `kubectl version` and the API
    server's /version say v1.37.x rather than v0.0.0-master."""
    major, minor = KUBERNETES.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": KUBERNETES,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": RELEASED,
    }
    return tuple(
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in values.items()
    )


BUILDS = (
    Build("k8s.io/kubernetes", KUBERNETES, KUBE_COMMANDS, _kubernetes_module, _version_flags()),
    Build("go.etcd.io/etcd/server/v3", ETCD, ("etcd",), _etcd_module),
    Build("github.com/coredns/coredns", COREDNS, ("coredns",), _coredns_module),
    Build("github.com/rhysd/actionlint", ACTIONLINT, ("actionlint",), _actionlint_module),
    Build(
        "github.com/mccutchen/go-httpbin/v2",
        HTTPBIN,
        ("go-httpbin",),
        _httpbin_module,
        (f"-X main.version={HTTPBIN}",),  # as its release build does: `-version` names it
    ),
    Build(
        "k8s.io/kubernetes", KUBERNETES, NODE_COMMANDS, _kubernetes_node_module, _version_flags()
    ),
    Build(
        "github.com/containerd/containerd/v2",
        CONTAINERD,
        CONTAINERD_COMMANDS,
        _containerd_module,
        # as containerd's Makefile stamps a release: the CRI reports it, the Node shows 2.4.2
        (
            f"-X github.com/containerd/containerd/v2/version.Version={CONTAINERD}",
            "-X github.com/containerd/containerd/v2/version.Package="
            "github.com/containerd/containerd/v2",
        ),
        CONTAINERD_TAGS,
    ),
    Build(
        "github.com/cloudnativelabs/kube-router/v2",
        KUBE_ROUTER,
        ("kube-router",),
        _kube_router_module,
        # as its Makefile does: unstamped, it logs a version-parse warning at every start
        (f"-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version={KUBE_ROUTER}",),
    ),
)


def _stamp(build: Build) -> str:
    tags = f" -tags={','.join(build.tags)}" if build.tags else ""  # none: the stamps as before
    return f"{build.module}@{build.version} {' '.join(build.ldflags)}".strip() + tags


def missing(bin_dir: Path = BIN) -> list[Build]:
    """The builds whose binaries are not (all) cached at their pinned version."""
    todo = []
    for build in BUILDS:
        stamp = bin_dir / f".{build.outputs[0]}.version"
        have = all((bin_dir / name).is_file() for name in build.outputs)
        if not have or not stamp.is_file() or stamp.read_text() != _stamp(build):
            todo.append(build)
    return todo


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure(log: Callable[[str], None] | None = None, bin_dir: Path = BIN) -> Path:
    """Build what is missing (under a lock) and return the folder holding every binary."""
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if not missing(bin_dir):
        return bin_dir
    with _locked(bin_dir.parent / ".build.lock"):
        for build in missing(bin_dir):  # again: another process may have built meanwhile
            _build(build, bin_dir, say)
    return bin_dir


def _build(build: Build, bin_dir: Path, say: Callable[[str], None]) -> None:
    names = ", ".join(build.outputs)
    say(
        f"building {names} from {build.module} {build.version} with {go()} "
        "(minutes on 2 cores; once per machine)"
    )
    started = time.monotonic()
    bin_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"build-{build.outputs[0]}-", dir=bin_dir.parent))
    try:
        packages = build.write_module(work)
        out = work / "out"
        out.mkdir()
        if (work / "main.go").exists():  # our own main: its imports decide the requirements
            _run_go(work, ["mod", "tidy"], say, f"{build.module} (go mod tidy)")
        target = str(out / build.outputs[0]) if packages == ["."] else f"{out}/"
        ldflags = " ".join(("-s", "-w", *build.ldflags))
        tags = [f"-tags={','.join(build.tags)}"] if build.tags else []
        command = ["build", "-v", "-trimpath", *tags, f"-ldflags={ldflags}", "-o", target]
        command += packages
        _run_go(work, command, say, build.module)
        for name in build.outputs:
            if not (out / name).is_file():
                raise BuildError(f"building {build.module}: go build made no {name}")
            os.replace(out / name, bin_dir / name)
        (bin_dir / f".{build.outputs[0]}.version").write_text(_stamp(build))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"built {names} in {time.monotonic() - started:.0f} s → {bin_dir}")


def path(name: str) -> Path:
    """The cached binary ``name`` (built first when missing)."""
    return ensure() / name


def main() -> None:
    try:
        folder = ensure()
    except BuildError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
    for name in NAMES:
        print(folder / name)


if __name__ == "__main__":
    main()
