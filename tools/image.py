"""The project's image, built from the unchanged Dockerfile on this machine and cached.

With docker when a daemon answers, else with podman (installed with apt-get when missing; runc,
and ulimits within this machine's hard limits, through a containers.conf of ours, never /etc's).
The Dockerfile's base, python:3.11-slim, is pulled once if missing; where no registry answers, a
local stand-in takes its name: Debian bookworm's Python 3.11 (mmdebstrap, cached once per
machine) with a venv on PATH, as the official image has pip on PATH, labelled as gaggle's
stand-in so that it is never mistaken for the real one and a real pull replaces it.

The image is named ``localhost/gaggle:<12 hex>`` after a hash of what goes into it (the
Dockerfile, every file of the build context .dockerignore lets in, the base image's id), also
tagged ``localhost/gaggle:dev``, and saved as a docker-archive (``podman load``, ``docker load``
and ``ctr images import`` take it) under ``~/.cache/gaggle/image`` (``GAGGLE_CACHE`` moves the
root): a second run builds nothing. A lock makes two concurrent callers build once.

    python tools/image.py [--tag NAME]     # build what is missing, print the name and archive
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GAGGLE_CACHE", Path.home() / ".cache" / "gaggle"))
FOLDER = CACHE / "image"

REPOSITORY = "localhost/gaggle"
DEV = f"{REPOSITORY}:dev"
BASE = "docker.io/library/python:3.11-slim"  # the Dockerfile's FROM, fully qualified
RAW_BASE = "localhost/gaggle-base:bookworm"  # the mmdebstrap tree as imported
STAND_IN = "dev.gaggle.stand-in"  # the stand-in's label (the images built on it inherit it)
RECIPE = "2"  # part of the cache key: bump it when the build commands change
KEEP = 2  # gaggle images (and archives) kept: the one built and the newest other
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # the host's, for pip in the build only
SUITE = "bookworm"
MMDEBSTRAP = (
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates",
    '--aptopt=APT::Install-Recommends "false"',
    "--format=tar",
    SUITE,
)
PULL_TIMEOUT = 300  # a pull that answers; where none does, it fails in well under a second
BUILD_TIMEOUT = 3600
PROGRESS_EVERY = 20
STEP = re.compile(r"STEP \d|^Step \d|^#\d|^I: ")  # podman, docker (classic, BuildKit), mmdebstrap

# runc (crun fails on cgroup v1 hybrid hosts) and ulimits a hard nofile limit of 20000 allows
# (podman's default asks for 1048576: "error setting rlimits").
CONTAINERS_CONF = """\
# written by tools/image.py for the image build and the tests' runs of it
[containers]
default_ulimits = ["nofile=1024:4096", "nproc=1000:1000"]

[engine]
runtime = "runc"
"""

STAND_IN_CONTAINERFILE = f"""\
# gaggle's local stand-in for {BASE}, written by tools/image.py
FROM {RAW_BASE}
LABEL {STAND_IN}="Debian {SUITE} python3 and a venv on PATH, made by gaggle's tools/image.py \
because {BASE} could not be pulled; not the official image"
ENV LANG=C.UTF-8 \\
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN python3 -m venv /opt/venv && pip --version && python --version \\
    && for tool in useradd groupadd; do command -v "$tool" \\
       || {{ echo "the stand-in lacks $tool, which the Dockerfile runs" >&2; exit 1; }}; done
CMD ["python3"]
"""


class BuildError(RuntimeError):
    """A step failed: the message names it and carries the tool's own output."""


@dataclass(frozen=True)
class Engine:
    """docker or podman, with the environment its commands need."""

    name: str
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The command to its end; BuildError (with its output) if it fails or overstays."""
        return _run([self.name, *args], timeout, env=self.env)

    def has(self, image: str) -> bool:
        command = [self.name, "image", "inspect", "--format", "{{.Id}}", image]
        try:
            done = subprocess.run(command, capture_output=True, timeout=120, env=self.env,
                                  stdin=subprocess.DEVNULL)  # fmt: skip
        except subprocess.TimeoutExpired as expired:
            raise BuildError(f"`{' '.join(command)}` did not end within 120 s") from expired
        return done.returncode == 0

    def inspect(self, image: str, template: str) -> str:
        return self.run("image", "inspect", "--format", template, image).stdout.strip()


@dataclass(frozen=True)
class Built:
    """The image, as ``ensure()`` left it."""

    name: str  # localhost/gaggle:<12 hex>
    archive: Path  # docker-archive of ``name`` (ctr -n k8s.io images import takes it)
    engine: str  # "docker" or "podman"
    key: str  # sha256 hex of what went into the image; name and archive are named after it
    image_id: str
    size: int  # bytes, as the engine counts them
    stand_in: bool  # built on gaggle's local stand-in for python:3.11-slim
    containers_conf: Path | None = None  # podman's, which every podman command here needs

    def command(self, *args: str) -> list[str]:
        return [self.engine, *args]

    @property
    def env(self) -> dict[str, str]:
        """This process's environment plus what the engine needs (podman: CONTAINERS_CONF)."""
        extra = {"CONTAINERS_CONF": str(self.containers_conf)} if self.containers_conf else {}
        return {**os.environ, **extra}


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _run(
    command: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, env=env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as expired:
        raise BuildError(f"`{' '.join(command)}` did not end within {timeout:.0f} s") from expired
    if done.returncode != 0:
        raise BuildError(
            f"`{' '.join(command)}` failed (exit {done.returncode}):\n"
            f"{_tail(done.stdout + done.stderr)}"
        )
    return done


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _stream(
    command: Sequence[str], log: Path, what: str, say: Callable[[str], None],
    env: Mapping[str, str] | None = None, timeout: float = BUILD_TIMEOUT,
) -> None:  # fmt: skip
    """A long command, its output to ``log``; a progress line every 20 s (its last step);
    BuildError with the log's tail when it fails or overstays."""
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )  # fmt: skip
        try:
            while True:
                try:
                    process.wait(timeout=PROGRESS_EVERY)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    if elapsed > timeout:
                        raise BuildError(
                            f"{what} did not end within {timeout:.0f} s; its output:\n"
                            f"{_tail(log.read_text(errors='replace'))}"
                        ) from None
                    say(f"  … {what}: {elapsed:.0f} s, {_last_step(log)}")
        finally:
            if process.poll() is None:  # ours, by its handle: end it, then make sure
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    if process.returncode != 0:
        raise BuildError(
            f"{what} failed (exit {process.returncode}; full log: {log}):\n"
            f"{_tail(log.read_text(errors='replace'))}"
        )


def _last_step(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    steps = [line for line in lines if STEP.search(line)]
    return (steps or lines or ["(no output yet)"])[-1][:100]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- the build context and the cache key ---------------------------------------------------------


def _pattern(text: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over a context-relative path (Go's filepath.Match
    plus ``**``, as docker reads it)."""
    pattern = os.path.normpath(text.strip().lstrip("/"))
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_rules(root: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception ``!``, pattern) for each line of ``root/.dockerignore``, in order."""
    ignore = root / ".dockerignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    rules = []
    for line in (raw.strip() for raw in lines):
        if line and not line.startswith("#"):
            exception = line.startswith("!")
            rules.append((exception, _pattern(line[1:] if exception else line)))
    return rules


def ignored(relative: str, rules: Sequence[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether docker leaves ``relative`` out of the context: the last rule matching it, or
    one of its parent folders, decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for exception, pattern in rules:
        if any(pattern.match(prefix) for prefix in prefixes):
            verdict = not exception
    return verdict


def context_files(root: Path) -> list[str]:
    """Every file of the build context (relative paths, sorted): what docker would send."""
    rules = ignore_rules(root)
    prune = not any(exception for exception, _ in rules)  # no "!": an ignored folder is all out
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        prefix = "" if here == "." else here + "/"
        if prune:
            dirs[:] = [d for d in dirs if d != "__pycache__" and not ignored(prefix + d, rules)]
        for name in files:
            relative = prefix + name
            if not name.endswith(".pyc") and not ignored(relative, rules):
                found.append(relative)
        found.extend(prefix + d for d in dirs if (Path(folder) / d).is_symlink())
    return sorted(found)


def cache_key(root: Path, base_id: str) -> str:
    """sha256 of the recipe, the base image's id and every context file (path, mode, bytes):
    any change to what goes into the image names a new one."""
    digest = hashlib.sha256(f"gaggle image recipe {RECIPE}\nbase {base_id}\n".encode())
    for relative in context_files(root):
        path = root / relative
        if path.is_symlink():
            data, mode = os.readlink(path).encode(), 0o120000
        else:
            data, mode = path.read_bytes(), path.stat().st_mode & 0o111
        digest.update(f"{relative}\0{mode:o}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


# -- the engine and the base ---------------------------------------------------------------------


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or any(
        Path(folder, tool).exists() for folder in ("/usr/sbin", "/sbin", "/usr/bin")
    )


def install(packages: Sequence[str], say: Callable[[str], None]) -> None:
    """apt-get install the Debian packages (named as their programs) that are missing."""
    missing = [package for package in packages if not _have(package)]
    if not missing:
        return
    if os.geteuid() != 0 or not _have("apt-get"):
        raise BuildError(
            f"building the image needs {', '.join(missing)} (no docker daemon answers): "
            f"install them (Debian: apt-get install {' '.join(missing)}) or run as root, "
            "where this installs them"
        )
    say(f"installing {', '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", *missing]
    try:
        _run(command, 1200, env)
    except BuildError:  # stale package lists: once more after an update
        _run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"], 600, env)
        _run(command, 1200, env)


def engine(folder: Path = FOLDER, say: Callable[[str], None] = _say) -> Engine:
    """docker when its daemon answers, else podman (installed if missing) with our config."""
    if shutil.which("docker"):
        try:
            info = subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if info.returncode == 0 and info.stdout.strip():
                return Engine("docker")
        except subprocess.TimeoutExpired:
            pass
    install(("podman", "buildah", "runc"), say)
    conf = folder / "containers.conf"
    folder.mkdir(parents=True, exist_ok=True)
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    return Engine("podman", {**os.environ, "CONTAINERS_CONF": str(conf)})


def base(tool: Engine, folder: Path, say: Callable[[str], None]) -> str:
    """The id of python:3.11-slim as the engine has it: pulled once if missing, else (no
    registry answers) gaggle's local stand-in made under that name."""
    if not tool.has(BASE):
        say(f"pulling {BASE} (once)")
        try:
            tool.run("pull", BASE, timeout=PULL_TIMEOUT)
        except BuildError as error:
            reason = str(error).splitlines()[-1][:400]
            say(f"cannot pull it ({reason}): making gaggle's local stand-in from Debian {SUITE}")
            stand_in(tool, folder, say)
    return tool.inspect(BASE, "{{.Id}}")


def rootfs(folder: Path, say: Callable[[str], None]) -> Path:
    """Debian's minimal tree with python3 and its venv module, as a tar: made once per machine."""
    recipe = hashlib.sha256(" ".join(MMDEBSTRAP).encode()).hexdigest()[:12]
    tar = folder / "base" / f"{SUITE}-{recipe}.tar"
    if tar.exists():
        return tar
    install(("mmdebstrap",), say)
    tar.parent.mkdir(parents=True, exist_ok=True)
    partial = tar.with_name(f"{tar.stem}.partial.tar")
    say(f"making Debian {SUITE} with python3 (mmdebstrap, minutes; once per machine) → {tar}")
    started = time.monotonic()
    try:
        _stream(["mmdebstrap", *MMDEBSTRAP, str(partial)], folder / "base" / "mmdebstrap.log",
                "mmdebstrap", say)  # fmt: skip
        os.replace(partial, tar)
    finally:
        partial.unlink(missing_ok=True)
    say(f"made {tar.name} in {time.monotonic() - started:.0f} s ({tar.stat().st_size >> 20} MB)")
    return tar


def stand_in(tool: Engine, folder: Path, say: Callable[[str], None]) -> None:
    """Import the Debian tree and tag it, with a venv on PATH, as python:3.11-slim."""
    tar = rootfs(folder, say)
    started = time.monotonic()
    say(f"importing {tar.name} as {RAW_BASE}")
    tool.run("import", str(tar), RAW_BASE, timeout=1200)
    context = folder / "base" / "context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Containerfile").write_text(STAND_IN_CONTAINERFILE)
    pull = ["--pull=never", "--layers=false"] if tool.name == "podman" else []
    command = [tool.name, "build", "--force-rm", "--network", "none", *pull, "-t", BASE,
               "-f", str(context / "Containerfile"), str(context)]  # fmt: skip
    _stream(command, folder / "base" / "build.log", f"building the stand-in {BASE}", say,
            tool.env)  # fmt: skip
    say(f"made the stand-in {BASE} in {time.monotonic() - started:.0f} s")


# -- the image -----------------------------------------------------------------------------------


def name_of(key: str) -> str:
    return f"{REPOSITORY}:{key[:12]}"


def archive_of(folder: Path, key: str) -> Path:
    return folder / f"gaggle-{key}.tar"


def build(tool: Engine, name: str, root: Path, log: Path, say: Callable[[str], None]) -> None:
    """The Dockerfile in ``root``, unchanged, built as ``name``."""
    command = [tool.name, "build", "--force-rm", "-t", name, "-f", str(root / "Dockerfile")]
    if tool.name == "podman":
        # pip in the builder reaches PyPI through this machine's CA bundle: mounted, never copied
        command += ["--network", "host", "--pull=never"]
        # one layer per stage, no intermediate images left behind (nothing to prune but ours)
        command += ["--layers=false"]
        if CA_BUNDLE.exists():
            command += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    _stream([*command, str(root)], log, f"building {name}", say, tool.env)


def save(tool: Engine, name: str, archive: Path) -> None:
    partial = archive.with_name(f".{archive.name}.partial")
    partial.unlink(missing_ok=True)
    form = ["--format", "docker-archive"] if tool.name == "podman" else []
    try:
        tool.run("save", *form, "-o", str(partial), name, timeout=1200)
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)


def prune(tool: Engine, folder: Path, key: str, say: Callable[[str], None]) -> None:
    """Keep the image just built and the newest other of ours; remove older ones, their
    archives and the layers nothing uses any more."""
    archives = sorted(folder.glob("gaggle-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    others = [p.stem.removeprefix("gaggle-") for p in archives if p != archive_of(folder, key)]
    keep = {key[:12], *(other[:12] for other in others[: KEEP - 1])}
    for old in others[KEEP - 1 :]:
        archive_of(folder, old).unlink(missing_ok=True)
    listed = tool.run("images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY).stdout
    stale = [
        image
        for image in listed.split()
        if re.fullmatch(rf"{re.escape(REPOSITORY)}:[0-9a-f]{{12}}", image)
        and image.rsplit(":", 1)[1] not in keep
    ]
    for image in stale:
        try:
            tool.run("rmi", image)
            say(f"removed the older {image}")
        except BuildError as error:  # e.g. a container still uses it: next time
            say(f"kept {image}: {str(error).splitlines()[-1]}")
    try:
        tool.run("image", "prune", "-f", timeout=600)
    except BuildError as error:
        say(f"image prune: {str(error).splitlines()[-1]}")


def ensure(
    log: Callable[[str], None] | None = None,
    root: Path = ROOT,
    folder: Path = FOLDER,
    tags: Sequence[str] = (),
) -> Built:
    """The image of ``root``'s Dockerfile and context: built (under a lock) only when what goes
    into it changed, also tagged localhost/gaggle:dev and ``tags``, saved as an archive."""
    say = log or _say
    with _locked(folder / ".build.lock"):
        tool = engine(folder, say)
        base_id = base(tool, folder, say)
        key = cache_key(root, base_id)
        name, archive = name_of(key), archive_of(folder, key)
        fresh = False
        if not tool.has(name) and archive.exists():
            say(f"loading {name} from {archive}")
            tool.run("load", "-i", str(archive), timeout=1200)
        if not tool.has(name):
            started = time.monotonic()
            say(f"building {name} from {root / 'Dockerfile'} with {tool.name} (minutes cold)")
            build(tool, name, root, folder / "build.log", say)
            say(f"built {name} in {time.monotonic() - started:.0f} s")
            fresh = True
        if not archive.exists():
            started = time.monotonic()
            save(tool, name, archive)
            say(f"saved {archive} in {time.monotonic() - started:.0f} s")
        os.utime(archive)  # the newest used is the last pruned
        for tag in (DEV, *tags):
            tool.run("tag", name, tag)
        if fresh:  # only then: pruning while another build of this machine runs costs it
            prune(tool, folder, key, say)  # its cached layers
        labels = tool.inspect(name, "{{json .Config.Labels}}")
        return Built(
            name=name,
            archive=archive,
            engine=tool.name,
            key=key,
            image_id=tool.inspect(name, "{{.Id}}"),
            size=int(tool.inspect(name, "{{.Size}}")),
            stand_in=STAND_IN in labels,
            containers_conf=Path(tool.env["CONTAINERS_CONF"]) if tool.name == "podman" else None,
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tag", action="append", default=[], help="also tag the image NAME")
    args = parser.parse_args(argv)
    try:
        built = ensure(tags=args.tag)
    except BuildError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
    base_text = "gaggle's local stand-in for python:3.11-slim" if built.stand_in else BASE
    also = ", ".join((DEV, *args.tag))
    print(f"{built.name} (also {also}): {built.engine}, {built.size / 1e6:.0f} MB, on {base_text}")
    print(f"{built.archive} (docker-archive: ctr -n k8s.io images import takes it)")


if __name__ == "__main__":
    main()
