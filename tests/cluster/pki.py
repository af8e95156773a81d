"""The cluster's own certificate authority and every certificate a real cluster's parts carry.

A cluster made by kubeadm has one CA that signs the API server's serving certificate and every
client certificate: the admin's (group ``system:masters``), the controller-manager's and the
scheduler's (their user names are what RBAC's bootstrap bindings name), the node's
(``system:node:<name>`` in ``system:nodes``, what the Node authorizer keys on), and the one the
API server shows the kubelet. ServiceAccount tokens are signed by a separate key pair. ``Pki``
makes all of these with the ``openssl`` command (no Python dependency): EC P-256, valid for a day,
with the extensions strict verifiers (Python's ``VERIFY_X509_STRICT``) require; ``issue`` makes a
client certificate for any user and groups (a test acting as a namespace ``edit`` user).
The keys live in the cluster's workdir and go with it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# What the API server's certificate is valid for besides its IPs: the `kubernetes` Service.
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

LEAF_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
{subject}
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{san}
"""

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pair:
    """A certificate and its key, as files."""

    cert: Path
    key: Path


def _openssl(folder: Path, *args: str) -> None:
    done = subprocess.run(
        ["openssl", *args], cwd=folder, capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


class Pki:
    """A new CA in ``folder`` (mode 0700), and certificates issued from it on demand."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("openssl") is None:
            raise RuntimeError("the cluster's certificates need openssl: apt-get install openssl")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        (folder / "ca.cnf").write_text(CA_CONFIG)
        _openssl(
            folder,
            "req",
            "-x509",
            *EC_KEY,
            "-config",
            "ca.cnf",
            "-days",
            "1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        )
        self.ca = folder / "ca.crt"
        # ServiceAccount tokens: the API server signs with the private key, checks with either
        _openssl(
            folder,
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-out",
            "sa.key",
        )
        _openssl(folder, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        self.service_account_key = folder / "sa.key"
        self.service_account_public = folder / "sa.pub"

    def issue(
        self,
        name: str,
        user: str,
        groups: tuple[str, ...] = (),
        server_ips: tuple[str, ...] = (),
        server_names: tuple[str, ...] = (),
    ) -> Pair:
        """A certificate for ``user`` in ``groups`` (CN and O, as Kubernetes reads them): a
        client's, or, given IPs or names, a server's valid for them."""
        subject = "\n".join([f"CN = {user}", *(f"{i}.O = {g}" for i, g in enumerate(groups))])
        server = bool(server_ips or server_names)
        alt = [*(f"IP:{ip}" for ip in server_ips), *(f"DNS:{n}" for n in server_names)]
        config = LEAF_CONFIG.format(
            subject=subject,
            usage="serverAuth" if server else "clientAuth",
            san=f"subjectAltName = {', '.join(alt)}" if alt else "",
        )
        (self.folder / f"{name}.cnf").write_text(config)
        _openssl(
            self.folder,
            "req",
            *EC_KEY,
            "-config",
            f"{name}.cnf",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        _openssl(
            self.folder,
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            f"{name}.cnf",
            "-extensions",
            "leaf",
            "-out",
            f"{name}.crt",
        )
        return Pair(self.folder / f"{name}.crt", self.folder / f"{name}.key")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
