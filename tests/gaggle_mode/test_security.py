"""Who may join a gaggle, with real processes and sockets on 127.0.0.1: tokens, TLS (mutual), and
peers that speak the wrong thing — garbage bytes, plain HTTP, another protocol version."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from gaggle.distributed.protocol import PROTOCOL_VERSION
from gaggle.distributed.security import warn_if_open
from gaggle.options.role import Role, RoleKind
from gaggle.wire import gaggle_pb2 as wire
from gaggle.wire import gaggle_pb2_grpc as wire_grpc
from tests.conftest import Target, finish, free_port, run_gaggle, spawn_gaggle, write_test
from tests.gaggle_mode.test_mode import TEST


def one_worker_manager(test: str, target: Target, port: int, *extra: str) -> subprocess.Popen[str]:
    return spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "1", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "-u", "2", "-r", "100", "-t", "1",
        "--metrics-bind", f"127.0.0.1:{free_port()}", *extra,
    )  # fmt: skip


def worker(test: str, port: int, *extra: str, token: str = "") -> subprocess.Popen[str]:
    env = {"GAGGLE_TOKEN": token} if token else None
    return spawn_gaggle(
        "run", test, "--worker", "--manager-port", str(port), "--join-timeout", "3", *extra, env=env
    )


def wait_listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 10
    while True:
        assert process.poll() is None, finish(process)
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_worker_needs_the_managers_token(target: Target, tmp_path: Path) -> None:
    test, port = write_test(tmp_path, TEST), free_port()
    manager = one_worker_manager(test, target, port, "--gaggle-token", "s3cret")
    try:
        wait_listening(port, manager)
        wrong = [finish(worker(test, port, token=token)) for token in ("", "s3cres")]
        right, right_err = finish(worker(test, port, token="s3cret"))
        code, err = finish(manager)
    finally:
        manager.kill()
        manager.wait()
    for wrong_code, wrong_err in wrong:
        assert wrong_code == 2
        assert "wrong or missing token" in wrong_err
    assert right == 0, right_err
    assert code == 0, err
    assert target.counts()["GET / 200"] > 0


def make_certificates(folder: Path) -> dict[str, str]:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=gaggle test CA")  # fmt: skip
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN=gaggle {name}")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
                "-extfile", f"{name}.ext")  # fmt: skip
    return {name: str(folder / name) for name in os.listdir(folder)}


def test_mutual_tls_admits_only_workers_with_a_certificate(target: Target, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    files = make_certificates(pki)
    test, port = write_test(tmp_path, TEST), free_port()
    manager = one_worker_manager(
        test, target, port, "--tls-cert", files["server.pem"], "--tls-key", files["server.key"],
        "--tls-ca", files["ca.pem"],
    )  # fmt: skip
    try:
        wait_listening(port, manager)
        plain = worker(test, port)  # no TLS at all
        no_certificate = worker(test, port, "--tls-ca", files["ca.pem"])
        refused = [finish(plain), finish(no_certificate)]
        certificate = ["--tls-cert", files["client.pem"], "--tls-key", files["client.key"]]
        good, good_err = finish(worker(test, port, "--tls-ca", files["ca.pem"], *certificate))
        code, err = finish(manager)
    finally:
        manager.kill()
        manager.wait()
    for refused_code, refused_err in refused:
        assert refused_code == 2
        assert f"no manager answered at 127.0.0.1:{port}" in refused_err
    assert "TLS certificates" in refused[1][1]
    assert good == 0, good_err
    assert code == 0, err
    assert target.counts()["GET / 200"] > 0


def test_garbage_and_other_protocols_do_not_hurt_the_manager(
    target: Target, tmp_path: Path
) -> None:
    test, port = write_test(tmp_path, TEST), free_port()
    manager = one_worker_manager(test, target, port)
    try:
        wait_listening(port, manager)
        for junk in (os.urandom(4096), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 64):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as peer:
                peer.sendall(junk)
                peer.settimeout(2)
                with contextlib.suppress(TimeoutError, ConnectionResetError):
                    peer.recv(1024)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            hello = wire.Hello(protocol_version=99, gaggle_version="9.9", name="from the future")
            replies = wire_grpc.GaggleStub(channel).Join(iter([wire.WorkerMessage(hello=hello)]))
            answer = next(replies)
        good, good_err = finish(worker(test, port))
        code, err = finish(manager)
    finally:
        manager.kill()
        manager.wait()
    assert answer.WhichOneof("body") == "refused"
    assert f"protocol version 99 is not {PROTOCOL_VERSION}" in answer.refused.reason
    assert "from the future" in err
    assert good == 0, good_err
    assert code == 0, err


def test_security_flags_are_checked(tmp_path: Path) -> None:
    test = write_test(tmp_path, TEST)
    pem = tmp_path / "cert.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    (tmp_path / "plain.txt").write_text("not a certificate")
    manager = ["--manager", "--expect-workers", "1"]
    cases = [
        (["--gaggle-token", "x"], "--gaggle-token: 'x'", "goes with --manager or --worker"),
        ([*manager, "--tls-cert", str(pem)], "--tls-cert", "--tls-cert and --tls-key go together"),
        ([*manager, "--tls-ca", str(pem)], "--tls-ca", "needs --tls-cert and --tls-key too"),
        ([*manager, "--tls-ca", "/nonexistent.pem"], "--tls-ca: '/nonexistent.pem'", "readable"),
        ([*manager, "--tls-key", str(tmp_path / "plain.txt"), "--tls-cert", str(pem)],
         "--tls-key", "no -----BEGIN line"),
        (["--worker", "--join-timeout", "0"], "--join-timeout: '0'", "seconds > 0"),
        ([*manager, "--join-timeout", "5"], "--join-timeout", "it goes with --worker"),
    ]  # fmt: skip
    for args, named, allowed in cases:
        result = run_gaggle("run", test, "--host", "http://127.0.0.1:9", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert named in result.stderr, (args, result.stderr)
        assert allowed in result.stderr, (args, result.stderr)


@pytest.mark.parametrize(
    ("bind_host", "token", "warned"),
    [("0.0.0.0", "", True), ("10.1.2.3", "", True), ("0.0.0.0", "t", False),
     ("127.0.0.1", "", False), ("localhost", "", False), ("::1", "", False)],
)  # fmt: skip
def test_an_open_manager_without_a_token_is_warned_about(
    bind_host: str, token: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gaggle"):
        warn_if_open(Role(kind=RoleKind.MANAGER, bind_host=bind_host, token=token))
    assert ("without --gaggle-token" in caplog.text) is warned
