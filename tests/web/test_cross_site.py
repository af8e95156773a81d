"""D9: the control API obeys its own pages and clients that are no browser's page (curl, the
operator), never another site's page, token or not. A POST must say its body is JSON (415); an
``Origin`` not the server's own and a ``Host`` another site's DNS could point here (DNS
rebinding) are 403s naming the header. Real runs on loopback and on every address, raw HTTP with
every header chosen, the operator's own relay, and headless Chromium attacking from another
origin and through a rebound name."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gaggle.web.same_origin import Sites
from gaggle_operator import relay
from tests.conftest import Target, finish, free_port, kill_leftovers
from tests.support import browser
from tests.web.test_live_page import probe, run_live, wait_until_serving

TOKEN = "cross-s3cret"
USERS = b'{"users": 7}'
JSON = {"Content-Type": "application/json"}


def ask(
    port: int, path: str, headers: dict[str, str], body: bytes | None = USERS, token: str = ""
) -> tuple[int, Any]:
    """One call with exactly these headers (Host too, when given), as a browser or curl would."""
    method = "GET" if body is None else "POST"
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body, {**sent, **headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


class Run:
    """A standalone run of 2 users whose metrics port (the API) is ``port``."""

    def __init__(self, process: subprocess.Popen[str], port: int, token: str) -> None:
        self.process, self.port, self.token = process, port, token

    def call(
        self, path: str, headers: dict[str, str], body: bytes | None = USERS
    ) -> tuple[int, Any]:
        return ask(self.port, path, headers, body, self.token)

    def status(self) -> dict[str, Any]:
        code, answer = self.call("/api/status", {}, None)
        assert code == 200, answer
        result: dict[str, Any] = answer
        return result

    def until(self, what: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The status once ``check`` holds (a change's answer may predate its users: wait)."""
        deadline = time.monotonic() + 10
        while not check(status := self.status()):
            assert time.monotonic() < deadline, f"not {what}: {status}"
            time.sleep(0.05)
        return status

    def untouched(self) -> None:
        """Nothing refused changed the run."""
        assert self.process.poll() is None, "the run ended"
        status = self.status()
        assert status["users"]["target"] == 2, status
        assert status["changes"] == [], status["changes"]
        assert not status["stopping"], status

    def stop(self) -> str:
        """End the run through the API; its stderr."""
        code, answer = self.call("/api/stop", JSON, b"{}")
        assert code == 200, answer
        exit_code, err = finish(self.process)
        assert exit_code == 0, err
        return err


@pytest.fixture
def running(target: Target, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Run]:
    """A run on 127.0.0.1, with a token when the test is parametrised with one."""
    token: str = getattr(request, "param", "")
    port = free_port()
    options = ["--metrics-bind", f"127.0.0.1:{port}"]
    process = run_live(target, tmp_path, *options, *(["--control-token", token] if token else []))
    try:
        wait_until_serving(process, port)
        yield Run(process, port, token)
    finally:
        kill_leftovers(process)


WITH_AND_WITHOUT_A_TOKEN = pytest.mark.parametrize(
    "running", ["", TOKEN], indirect=True, ids=["no-token", "token"]
)


@WITH_AND_WITHOUT_A_TOKEN
def test_d9_a_post_that_is_not_json_is_refused_with_415(running: Run) -> None:
    for given in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        code, answer = running.call("/api/users", {"Content-Type": given})
        assert code == 415, answer
        assert (answer["field"], answer["value"]) == ("Content-Type", given)
        assert "application/json" in answer["allowed"]
        assert answer["error"].startswith(f"Content-Type: {given!r} is not allowed")
    code, answer = running.call("/api/stop", {}, b"")  # no type at all: curl -X POST
    assert (code, answer["value"]) == (415, None), answer
    running.untouched()
    code, _ = running.call("/api/users", {"Content-Type": "Application/JSON; charset=utf-8"})
    assert code == 200  # JSON, however spelled
    assert "POST /api/users refused: Content-Type: 'text/plain'" in running.stop()


@WITH_AND_WITHOUT_A_TOKEN
def test_d9_an_origin_of_another_site_is_refused(running: Run) -> None:
    port = running.port
    for origin in (
        "http://evil.example",
        f"http://evil.example:{port}",
        f"http://127.0.0.1:{port + 1}",  # another server on this machine is another origin
        f"http://127.0.0.2:{port}",
        "null",  # a sandboxed frame, a file:// page
        f"file://127.0.0.1:{port}",
    ):
        code, answer = running.call("/api/users", {**JSON, "Origin": origin})
        assert code == 403, (origin, answer)
        assert (answer["field"], answer["value"]) == ("Origin", origin)
        assert "same-origin" in answer["allowed"]
        code, _ = running.call("/api/status", {"Origin": origin}, None)  # nor read it
        assert code == 403
    running.untouched()
    running.stop()


@WITH_AND_WITHOUT_A_TOKEN
def test_d9_host_evil_example_is_refused(running: Run) -> None:
    port = running.port
    for host in ("evil.example", f"evil.example:{port}", f"manager.svc:{port}", "x:1:2", ""):
        rebound = {"Host": host, "Origin": f"http://{host}"}  # a rebinding page's own origin
        for headers in ({**JSON, "Host": host}, {**JSON, **rebound}):
            code, answer = running.call("/api/users", headers)
            assert code == 403, (headers, answer)
            assert (answer["field"], answer["value"]) == ("Host", host)
            assert "DNS rebinding" in answer["allowed"]
        code, _ = running.call("/api/status", {"Host": host}, None)
        assert code == 403
    running.untouched()
    running.stop()


@WITH_AND_WITHOUT_A_TOKEN
def test_d9_the_same_origin_page_and_a_client_without_origin_are_obeyed(running: Run) -> None:
    port = running.port
    page = {**JSON, "Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"}
    assert running.call("/api/users", page, b'{"users": 3}')[0] == 200
    named = {**JSON, "Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    assert running.call("/api/users", named, b'{"users": 4}')[0] == 200  # kubectl port-forward
    curl = {**JSON, "Host": f"127.0.0.1:{port}"}  # no Origin: no browser's page
    assert running.call("/api/users", curl, b'{"users": 5}')[0] == 200
    ipv6 = {**JSON, "Host": f"[::1]:{port}", "Origin": f"http://[::1]:{port}"}
    assert running.call("/api/users", ipv6, b'{"users": 6}')[0] == 200
    behind_tls = {**JSON, "Host": "gaggle.localhost", "Origin": "https://gaggle.localhost"}
    assert running.call("/api/users", behind_tls)[0] == 200  # a proxy adding https
    status = running.until("7 users", lambda status: status["users"]["target"] == 7)
    assert [c["what"] for c in status["changes"]] == ["users"] * 5, status["changes"]
    running.stop()


def test_d9_on_every_address_the_operator_and_port_forwards_are_obeyed_and_others_not(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manager pod's bind (0.0.0.0, a token): the operator's relay by the Service's name (its
    DNS stood in for: that name → this run), port-forwards, the pod's address and names."""
    port = free_port()
    process = run_live(
        target, tmp_path, "--metrics-bind", f"0.0.0.0:{port}", "--control-token", TOKEN
    )
    try:
        wait_until_serving(process, port)
        run = Run(process, port, TOKEN)
        base = relay.manager_url("web", "load")
        service = urlsplit(base).hostname
        real = socket.getaddrinfo

        def cluster_dns(host: Any, *rest: Any, **named: Any) -> Any:
            if host == service:
                return real("127.0.0.1", port, socket.AF_INET, socket.SOCK_STREAM)
            return real(host, *rest, **named)

        monkeypatch.setattr(socket, "getaddrinfo", cluster_dns)
        (outcome,) = relay.relay(base, TOKEN, {"users": 2}, {"users": 3})
        monkeypatch.undo()
        assert outcome.error == "", outcome.error
        for host in (
            f"localhost:{port}",
            f"127.0.0.1:{port}",
            "10.244.0.7:9646",  # the pod's address
            "web-manager:9646",  # the Service's short name
            "web-manager.load.svc.cluster.local:9646",
            socket.gethostname(),  # the pod's own name
        ):
            code, answer = run.call("/api/users", {**JSON, "Host": host}, b'{"users": 3}')
            assert code == 200, (host, answer)
        for host in ("evil.example", "web-manager.load.svc.evil.example"):
            code, answer = run.call("/api/users", {**JSON, "Host": host})
            assert (code, answer["field"]) == (403, "Host"), answer
        code, answer = run.call("/api/users", {**JSON, "Origin": "http://evil.example"})
        assert (code, answer["field"]) == (403, "Origin"), answer
        run.until("3 users", lambda status: status["users"]["target"] == 3)
        run.stop()
    finally:
        kill_leftovers(process)


@pytest.mark.parametrize(
    ("host", "loopback", "beyond"),
    [
        ("127.0.0.1:8089", True, True),
        ("[::1]:8089", True, True),
        ("LOCALHOST.:8089", True, True),
        ("app.localhost", True, True),
        ("10.0.0.5", True, True),  # an address: no DNS to rebind
        ("manager:9646", False, True),
        ("web-manager.ns.svc:9646", False, True),
        ("box.local", False, True),
        ("evil.example:8089", False, False),
        ("svc.evil.example", False, False),
        ("localhost.evil.example", False, False),
        ("[::1", False, False),
        ("host:99999", False, False),
        ("host:8a", False, False),
        ("::1", False, False),  # an IPv6 Host is bracketed
        ("", False, False),
    ],
)
def test_d9_which_host_headers_name_this_server(host: str, loopback: bool, beyond: bool) -> None:
    assert (Sites.of(["127.0.0.1"], beyond=False).refusal(host, None) is None) is loopback
    assert (Sites.of(["::"], beyond=True).refusal(host, None) is None) is beyond


def test_d9_a_name_a_bind_gives_is_allowed() -> None:
    sites = Sites.of(["loadbox.corp.example", "::"], beyond=True)
    assert sites.refusal("LoadBox.corp.example:8089", "http://loadbox.corp.example:8089") is None
    refused = sites.refusal("other.corp.example:8089", None)
    assert refused is not None
    assert "loadbox.corp.example" in refused.allowed


# In the browser: a page of another origin (the target's, on 127.0.0.2) tries what any page
# can: a fetch needing no preflight, a JSON fetch (preflighted), a text/plain form whose body
# is JSON ({"reason":"="}), into a frame.
ANOTHER_SITE = """
  const api = "http://127.0.0.1:API";
  const simple = await fetch(api + "/api/users", { method: "POST", mode: "no-cors",
    headers: { "Content-Type": "text/plain" }, body: '{"users": 9}' }).then(
    response => response.type, error => String(error));
  const preflighted = await fetch(api + "/api/users", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: '{"users": 9}' }).then(
    response => response.status, error => "blocked");
  const frame = document.createElement("iframe");
  frame.name = "sink";
  document.body.appendChild(frame);
  const loaded = new Promise(resolve => { frame.onload = resolve; });
  const form = document.createElement("form");
  Object.assign(form, { method: "POST", action: api + "/api/stop", enctype: "text/plain",
                        target: "sink" });
  const field = document.createElement("input");
  Object.assign(field, { name: '{"reason":"', value: '"}' });
  form.appendChild(field);
  document.body.appendChild(form);
  form.submit();
  await loaded;
  return { simple, preflighted, origin: location.origin };
"""


def test_d9_a_page_of_another_site_in_a_browser_cannot_steer_the_run(
    running: Run, target: Target
) -> None:
    attack = probe(ANOTHER_SITE.replace("API", str(running.port)))
    page = browser.open_page(f"{target.other_origin}/evil", attack)
    value = page.value
    assert "failed" not in value, value
    assert value["origin"].startswith("http://127.0.0.2:")  # another origin indeed
    assert value["simple"] == "opaque"  # sent; its answer hidden from the page
    assert value["preflighted"] == "blocked"  # the preflight finds no CORS here
    assert f"http://127.0.0.1:{running.port}/api/stop" in page.requests  # the form was sent
    running.untouched()
    err = running.stop()
    assert "POST /api/users refused: Origin: 'http://127.0.0.2:" in err
    assert "POST /api/stop refused: Origin: 'http://127.0.0.2:" in err


# The live page reached by a rebound name (evil.example → 127.0.0.1, as a rebinding page's DNS
# would answer): its own same-origin calls are refused, and it says why.
REBOUND = """
  await until("the refusal shown", () => byId("control-message").textContent.includes("Host"));
  const call = await fetch("/api/users", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: '{"users": 9}' });
  return { shown: byId("control-message").textContent, status: call.status,
           answer: await call.json() };
"""


def test_d9_a_rebound_name_in_a_browser_cannot_steer_the_run(
    running: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    monkeypatch.setattr(browser, "FLAGS", (*browser.FLAGS, rules))
    page = browser.open_page(f"http://evil.example:{running.port}/", probe(REBOUND))
    value = page.value
    assert "failed" not in value, value
    assert value["shown"].startswith(f"Host: 'evil.example:{running.port}' is not allowed")
    assert value["status"] == 403
    assert value["answer"]["field"] == "Host"
    running.untouched()
    running.stop()
