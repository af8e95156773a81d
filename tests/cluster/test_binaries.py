"""The test cluster's binaries: built from the pinned Go modules, cached, at the versions pinned;
a build that fails names the module and shows Go's own error; without Go, one line says what
to install."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.cluster import binaries

pytestmark = pytest.mark.timeout(300)


def test_every_binary_is_cached_at_its_pinned_version() -> None:
    folder = binaries.ensure()  # built by `make test` before pytest: nothing to do here
    assert binaries.missing(folder) == []

    def version(name: str, flag: str = "--version") -> str:
        done = subprocess.run(
            [str(folder / name), flag], capture_output=True, text=True, timeout=30
        )
        return done.stdout + done.stderr

    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert version(name).strip() == f"Kubernetes {binaries.KUBERNETES}"
    assert f"Client Version: {binaries.KUBERNETES}" in version("kubectl", "version")
    assert f"etcd Version: {binaries.ETCD.lstrip('v')}" in version("etcd")
    assert f"CoreDNS-{binaries.COREDNS.lstrip('v')}" in version("coredns", "-version")
    assert f"go-httpbin version {binaries.HTTPBIN}\n" in version("go-httpbin", "-version")


def test_the_build_module_replaces_each_staging_module_with_its_release(tmp_path: Path) -> None:
    packages = binaries._kubernetes_module(tmp_path)
    gomod = (tmp_path / "go.mod").read_text()
    assert f"require k8s.io/kubernetes {binaries.KUBERNETES}" in gomod
    replaced = re.findall(r"^\t(k8s\.io/[\w-]+) => (k8s\.io/[\w-]+) (v\S+)$", gomod, re.M)
    assert len(replaced) > 25
    assert all(a == b and v == binaries.STAGING for a, b, v in replaced)
    assert {"k8s.io/api", "k8s.io/client-go", "k8s.io/kubectl"} <= {a for a, _, _ in replaced}
    assert packages == [f"k8s.io/kubernetes/cmd/{n}" for n in binaries.KUBE_COMMANDS]


def test_a_failed_build_names_the_module_and_shows_gos_error(tmp_path: Path) -> None:
    def broken(folder: Path) -> list[str]:
        (folder / "go.mod").write_text("module gaggle.test/broken\n\ngo 1.26.0\n")
        (folder / "main.go").write_text("package main\n\nfunc main() { undefinedCall() }\n")
        return ["."]

    build = binaries.Build("gaggle.test/broken", "v0.0.1", ("broken",), broken)
    said: list[str] = []
    with pytest.raises(binaries.BuildError) as failed:
        binaries._build(build, tmp_path / "bin", said.append)
    assert "building gaggle.test/broken failed" in str(failed.value)
    assert "undefined: undefinedCall" in str(failed.value)
    assert said[0].startswith("building broken from gaggle.test/broken v0.0.1")
    assert not (tmp_path / "bin" / "broken").exists()


def test_without_go_one_line_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(binaries, "GO_FALLBACK", tmp_path / "no-go")
    with pytest.raises(binaries.BuildError) as failed:
        binaries.ensure(bin_dir=tmp_path / "empty")
    assert str(failed.value) == binaries.NO_GO
    assert "Install Go 1.26 or newer" in binaries.NO_GO
