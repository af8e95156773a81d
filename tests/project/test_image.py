"""The image built from the unchanged Dockerfile on this machine (tools/image.py): cached by what
goes into it, and its three entrypoints run as uid 10001 with a read-only root.

`make test` builds it before pytest (`make image`), so ``ensure()`` here is a cache hit; a machine
with neither a docker daemon nor podman (or root to install it) fails here with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaggle._version import __version__
from tests.conftest import ROOT, Target
from tools import image as image_tool
from tools.compiled import compiled_names
from tools.image import BuildError, Built

pytestmark = pytest.mark.timeout(600)  # a cold build is make's, before pytest; this is a margin

UID = "10001"  # the Dockerfile's USER, and runAsUser of the operator's pods

TINY = """\
from gaggle import TaskSet, task


class Tiny(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")
"""


@pytest.fixture(scope="module")
def image() -> Iterator[Built]:
    try:
        yield image_tool.ensure()
    except BuildError as error:  # no silent skip: the reason is the failure
        pytest.fail(f"the image cannot be built on this machine:\n{error}", pytrace=False)


def run_image(
    image: Built,
    *args: str,
    entrypoint: str | None = None,
    network: str = "none",
    volumes: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """The image as a pod runs it: uid 10001, read-only root, a tmpfs /tmp."""
    command = image.command(
        "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--user", f"{UID}:{UID}",
        "--network", network,
        *(["--entrypoint", entrypoint] if entrypoint else []),
        *(flag for volume in volumes for flag in ("-v", volume)),
        image.name, *args,
    )  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=image.env)


# -- the cache key: what goes into the image -----------------------------------------------------


def test_the_key_hashes_the_context_dockerignore_lets_in() -> None:
    files = image_tool.context_files(ROOT)
    needed = ("Dockerfile", "pyproject.toml", "README.md", "worker/gaggle/__init__.py",
              "worker/gaggle/_version.py", "operator/gaggle_operator/__init__.py")  # fmt: skip
    assert set(needed) <= set(files)
    for left_out in ("tests/", ".venv/", ".git/", "docs/", "tools/"):
        assert not any(f.startswith(left_out) for f in files), left_out
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def write_context(root: Path) -> None:
    (root / "src" / "__pycache__").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY src/ src/\n")
    (root / ".dockerignore").write_text("# comment\ntests\n**/__pycache__\n*.log\n!keep.log\n")
    (root / "src" / "a.py").write_text("a = 1\n")
    (root / "src" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (root / "tests" / "t.py").write_text("t = 1\n")
    (root / "run.log").write_text("1\n")
    (root / "keep.log").write_text("1\n")
    (root / "src" / "deep.log").write_text("1\n")  # `*.log` is the top folder's only


def test_the_key_follows_the_context_and_the_base_and_nothing_else(tmp_path: Path) -> None:
    write_context(tmp_path)
    assert image_tool.context_files(tmp_path) == [
        ".dockerignore", "Dockerfile", "keep.log", "src/a.py", "src/deep.log"]  # fmt: skip
    key = image_tool.cache_key(tmp_path, "sha256:base")
    (tmp_path / "tests" / "t.py").write_text("t = 2\n")
    (tmp_path / "run.log").write_text("2\n")
    (tmp_path / "src" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\1")
    assert image_tool.cache_key(tmp_path, "sha256:base") == key  # none of these goes in
    assert image_tool.cache_key(tmp_path, "sha256:other") != key
    (tmp_path / "src" / "a.py").chmod(0o755)
    assert image_tool.cache_key(tmp_path, "sha256:base") != key  # the executable bit goes in
    (tmp_path / "src" / "a.py").chmod(0o644)
    assert image_tool.cache_key(tmp_path, "sha256:base") == key
    for changed in ("src/a.py", "keep.log", "Dockerfile", ".dockerignore"):
        path = tmp_path / changed
        before = path.read_text()
        path.write_text(before + "#\n")
        assert image_tool.cache_key(tmp_path, "sha256:base") != key, changed
        path.write_text(before)
    (tmp_path / "src" / "b.py").write_text("")
    assert image_tool.cache_key(tmp_path, "sha256:base") != key


# -- the image ---------------------------------------------------------------------------------


def test_a_second_ensure_builds_nothing_and_the_archive_holds_the_image(image: Built) -> None:
    said: list[str] = []
    assert image_tool.ensure(said.append) == image
    assert said == []  # nothing pulled, built, saved or pruned
    assert image.name == f"localhost/gaggle:{image.key[:12]}"
    assert image.archive == image_tool.FOLDER / f"gaggle-{image.key}.tar"
    with tarfile.open(image.archive) as archive:  # docker-archive: what ctr imports
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert [entry["RepoTags"] for entry in manifest] == [[image.name]]
    dev = subprocess.run(image.command("image", "inspect", "--format", "{{.Id}}", image_tool.DEV),
                         capture_output=True, text=True, timeout=60, env=image.env)  # fmt: skip
    assert dev.stdout.strip() == image.image_id


def test_gaggle_version_as_uid_10001_on_a_read_only_root(image: Built) -> None:
    done = run_image(image, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"gaggle {__version__}"
    who = run_image(image, entrypoint="id")
    assert who.returncode == 0, who.stderr
    assert who.stdout.startswith(f"uid={UID}(gaggle) gid={UID}(gaggle)"), who.stdout
    # read-only: not even the home folder's parent takes a file; /tmp (the pods' emptyDir) does
    probe = "open('/tmp/x', 'w').write('1'); open('/opt/x', 'w')"
    wrote = run_image(image, "-c", probe, entrypoint="python")
    assert "Read-only file system: '/opt/x'" in wrote.stderr, wrote.stderr


def test_the_images_python_is_3_11_whichever_base_it_was_built_on(image: Built) -> None:
    done = run_image(image, "--version", entrypoint="python")
    assert done.stdout.startswith("Python 3.11."), done.stdout + done.stderr


def test_the_images_engine_is_the_compiled_one(image: Built) -> None:
    """The Dockerfile builds gaggle's wheel with GAGGLE_COMPILE=1: each module of
    ``[tool.gaggle] compiled`` is an extension module in the image, not its source."""
    names = compiled_names()
    script = "import importlib, sys\n"
    script += "for name in sys.argv[1:]: print(importlib.import_module(name).__file__)"
    done = run_image(image, "-c", script, *names, entrypoint="python")
    assert done.returncode == 0, done.stderr
    files = done.stdout.split()
    assert len(files) == len(names)
    assert all(file.endswith(".so") for file in files), files


def test_kopf_runs_in_the_image(image: Built) -> None:
    done = run_image(image, "--version", entrypoint="kopf")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kopf, version "), done.stdout


def test_the_operators_entrypoint_runs_in_the_image(image: Built) -> None:
    done = run_image(image, "run", "--help", entrypoint="gaggle-operator")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_a_run_in_the_image_makes_exactly_the_requests_it_reports(
    image: Built, target: Target, tmp_path: Path
) -> None:
    scripts, out = tmp_path / "scripts", tmp_path / "out"
    scripts.mkdir(mode=0o755)
    (scripts / "tiny.py").write_text(TINY)
    out.mkdir()
    out.chmod(0o777)  # uid 10001 writes the report there
    done = run_image(
        image, "run", "/t/tiny.py", "--host", target.url, "-u", "1", "-r", "1",
        "--iterations", "5", "--no-reset-metrics", "--no-live", "-R", "/out/report.json",
        network="host", volumes=(f"{scripts}:/t:ro", f"{out}:/out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert target.counts() == {"GET / 200": 5}
    report = json.loads((out / "report.json").read_text())
    rows = {f"{r['method']} {r['name']}": (r["count"], r["fails"]) for r in report["requests"]}
    assert rows == {"GET /": (5, 0)}


def test_a_failed_build_names_the_image_and_shows_the_steps_output(
    image: Built, tmp_path: Path
) -> None:
    tool = image_tool.engine()  # the base is there (the image fixture): the RUN step fails
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN echo gaggle-broken-step && exit 3\n"
    )
    said: list[str] = []
    name = "localhost/gaggle-test:broken"
    with pytest.raises(BuildError) as failed:
        image_tool.build(tool, name, tmp_path, tmp_path / "build.log", said.append)
    assert f"building {name} failed" in str(failed.value)
    assert "gaggle-broken-step" in str(failed.value)
    assert not tool.has(name)


def test_the_stand_in_says_what_it_is(image: Built) -> None:
    """Built on gaggle's stand-in (no registry answered), the image says so in a label; on the
    real python:3.11-slim, no such label."""
    labels = subprocess.run(
        image.command("image", "inspect", "--format", "{{json .Config.Labels}}",
                      image_tool.BASE),
        capture_output=True, text=True, timeout=60, env=image.env,
    ).stdout  # fmt: skip
    base_labels = json.loads(labels) or {}
    assert (image_tool.STAND_IN in base_labels) == image.stand_in
    if image.stand_in:
        assert "not the official image" in base_labels[image_tool.STAND_IN]


def test_without_an_engine_or_root_to_install_one_the_reason_is_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root
    said: list[str] = []
    with pytest.raises(BuildError) as failed:
        image_tool.install(("gaggle-no-such-engine",), said.append)
    assert "needs gaggle-no-such-engine (no docker daemon answers)" in str(failed.value)
    assert "apt-get install gaggle-no-such-engine" in str(failed.value)
    assert said == []  # nothing was tried
