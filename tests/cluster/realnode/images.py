"""The node's two images, made here as OCI image archives with nothing but the standard library.

No registry is reachable, so nothing is pulled: every image reaches containerd by ``ctr images
import`` (``containerd.import_image``). Two are built from Debian's static binaries:

- ``pause``: scratch + ``catatonit`` as ``/pause`` (``ENTRYPOINT ["/pause", "-P"]``), the pod
  sandbox's process (what registry.k8s.io/pause is on a production node);
- ``toolbox``: scratch + ``busybox-static`` with its applet links in ``/bin`` (sh, httpd, wget,
  nc, head, tail, sleep, id, ip, ...), for the tests' pods that need a shell, an HTTP server, a
  memory hog or a CPU spinner; ``/etc/passwd`` names root, nobody and the project image's user
  (gaggle, 10001). Note: Debian's busybox 1.35 ``wget -T`` crashes; use ``timeout N wget``.

Each archive is one uncompressed layer of fixed mtimes and owners, so the same binaries make the
same digests: the tag is the layer's digest, and importing it again costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

CATATONIT = Path("/usr/bin/catatonit")  # Debian package catatonit
BUSYBOX = Path("/usr/bin/busybox")  # Debian package busybox-static (statically linked)
PACKAGES = {CATATONIT: "catatonit", BUSYBOX: "busybox-static"}
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    "gaggle:x:10001:10001::/tmp:/bin/sh\n"
)
GROUP = "root:x:0:\nnogroup:x:65534:\ngaggle:x:10001:\n"


@dataclass(frozen=True)
class Image:
    """An image archive on disk and the name containerd knows it by once imported."""

    name: str  # e.g. localhost/toolbox:3f2a…
    archive: Path


def install() -> None:
    """apt-get the packages whose binaries the images hold, if missing (as root)."""
    wanted = sorted(pkg for path, pkg in PACKAGES.items() if not path.exists())
    if wanted and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", *wanted], check=False, timeout=600)
    missing = [f"{path} (apt-get install {pkg})" for path, pkg in PACKAGES.items()
               if not path.exists()]  # fmt: skip
    if missing:
        raise RuntimeError(f"the real node's images need {', '.join(missing)}")


def _entry(layer: tarfile.TarFile, name: str, kind: bytes, mode: int, data: bytes = b"",
           target: str = "") -> None:  # fmt: skip
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    info.linkname = target
    info.size = len(data)
    layer.addfile(info, io.BytesIO(data) if data else None)


def layer(
    files: dict[str, tuple[bytes, int]],
    links: dict[str, str] | None = None,
    dirs: dict[str, int] | None = None,
) -> bytes:
    """A layer tar: ``files`` (name: (content, mode)), symlinks, folders (name: mode)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for name, mode in sorted((dirs or {}).items()):
            _entry(layer, name, tarfile.DIRTYPE, mode)
        for name, (data, mode) in sorted(files.items()):
            _entry(layer, name, tarfile.REGTYPE, mode, data)
        for name, target in sorted((links or {}).items()):
            _entry(layer, name, tarfile.SYMTYPE, 0o777, target=target)
    return out.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_archive(path: Path, repository: str, content: bytes, config: dict[str, object]) -> Image:
    """An OCI image layout tar at ``path`` holding one image of the layer ``content``, named
    ``<repository>:<first 12 hex of the layer digest>``."""
    layer_digest = _digest(content)
    name = f"{repository}:{layer_digest[7:19]}"
    image_config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created_by": "tests/cluster/realnode/images.py"}],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(image_config),
                "size": len(image_config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(content),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    blobs = {_digest(b)[7:]: b for b in (content, image_config, manifest)}
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
    files |= {f"blobs/sha256/{hex_}": blob for hex_, blob in blobs.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as archive:
        for folder in ("blobs", "blobs/sha256"):
            _entry(archive, folder, tarfile.DIRTYPE, 0o755)
        for member, data in files.items():
            _entry(archive, member, tarfile.REGTYPE, 0o644, data)
    return Image(name, path)


def pause(folder: Path) -> Image:
    content = layer({"pause": (CATATONIT.read_bytes(), 0o755)})
    # the user registry.k8s.io/pause runs as
    config: dict[str, object] = {"Entrypoint": ["/pause", "-P"], "User": "65535:65535"}
    return write_archive(folder / "pause.tar", "localhost/pause", content, config)


def applets() -> list[str]:
    """The applets this busybox was built with (``busybox --list``)."""
    done = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, timeout=10)
    return [name for name in done.stdout.split() if name and name != "busybox"]


def toolbox(folder: Path) -> Image:
    files = {
        "bin/busybox": (BUSYBOX.read_bytes(), 0o755),
        "etc/passwd": (PASSWD.encode(), 0o644),
        "etc/group": (GROUP.encode(), 0o644),
    }
    links = {f"bin/{name}": "busybox" for name in applets()}
    dirs = {"bin": 0o755, "etc": 0o755, "tmp": 0o1777, "root": 0o700}
    config: dict[str, object] = {
        "Cmd": ["sh"],
        "Env": ["PATH=/bin"],
        "WorkingDir": "/",
    }
    return write_archive(folder / "toolbox.tar", "localhost/toolbox", layer(files, links, dirs),
                         config)  # fmt: skip
