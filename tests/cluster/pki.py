"""The cluster's own certificate authority, so pods reach the API over HTTPS as in a real cluster.

A real cluster's API server presents a certificate from the cluster CA, and every pod gets that
CA as ``ca.crt`` to verify it by (``load_incluster_config`` insists on HTTPS with a CA file).
Here ``make`` creates, with the ``openssl`` command (no Python dependency), a fresh CA and a
server certificate for the address pods dial and the names of the ``kubernetes`` Service
(``kubernetes``, ``kubernetes.default``, ``kubernetes.default.svc``,
``kubernetes.default.svc.cluster.local``). Both are EC P-256, valid for a day, with the
extensions strict verifiers (Python's ``VERIFY_X509_STRICT``) require. The keys live in the
cluster's workdir and are deleted with it (``remove``) when the cluster stops.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)

CA_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
CN = gaggle-local-ca
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

SERVER_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = kube-apiserver
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {san}
"""


@dataclass(frozen=True)
class Pki:
    folder: Path
    ca: Path  # what pods get as ca.crt
    cert: Path
    key: Path

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _openssl(folder: Path, *args: str) -> None:
    done = subprocess.run(
        ["openssl", *args], cwd=folder, capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def make(folder: Path, ips: list[str]) -> Pki:
    """A new CA and a server certificate for ``ips`` and the ``kubernetes`` Service's names."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the cluster's HTTPS needs the openssl command: apt-get install openssl")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (folder / "ca.cnf").write_text(CA_CONFIG)
    san = ", ".join([*(f"IP:{ip}" for ip in ips), *(f"DNS:{name}" for name in NAMES)])
    (folder / "server.cnf").write_text(SERVER_CONFIG.format(san=san))
    _openssl(folder, "req", "-x509", *key, "-config", "ca.cnf", "-days", "1",
             "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    _openssl(folder, "req", *key, "-config", "server.cnf", "-keyout", "server.key",
             "-out", "server.csr")  # fmt: skip
    _openssl(folder, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "1", "-extfile", "server.cnf", "-extensions", "server",
             "-out", "server.crt")  # fmt: skip
    return Pki(folder, folder / "ca.crt", folder / "server.crt", folder / "server.key")
