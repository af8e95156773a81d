"""Both HTTP clients against the same counting target: what a request sends, how redirects and
failures are recorded, TLS with a custom CA, and which client a task set uses.

Each test takes ``http_client`` and runs once per client with identical assertions; together
with the HTTP tests of test_engine.py and test_latency.py they are the clients' shared suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console

from gaggle import Attack, RunResult, TaskSet, TestDefinitionError, task
from gaggle.http import CLIENTS
from gaggle.options.converters import HTTP_CLIENTS
from tests.conftest import Target, run_gaggle, target_process, wait_for_count, write_test
from tests.gaggle_mode.test_security import make_certificates


def run(*tasksets: type[TaskSet], console: Console, **options: Any) -> RunResult:
    options.setdefault("hatch_rate", 1000)
    return asyncio.run(Attack(*tasksets).run_async(console=console, **options))


def test_every_client_name_has_an_implementation() -> None:
    assert set(HTTP_CLIENTS) == set(CLIENTS)


class Sends(TaskSet):
    """Each kind of request once per user (on_start), the target's echo kept for the test."""

    seen: ClassVar[list[tuple[str, Any]]] = []

    async def echo(self, label: str, method: str = "POST", **kwargs: Any) -> None:
        response = await self.request(method, "/echo", name=label, **kwargs)
        self.seen.append((label, response.json()))

    @task(on_start=True)
    async def all_kinds(self) -> None:
        await self.echo("form", data={"user": "a b", "city": "Zürich"})
        await self.echo("pairs", data=[("k", "1"), ("k", "2")])
        await self.echo("text", data="héllo")
        await self.echo("bytes", data=b"\x00raw")
        await self.echo("json", json={"n": 1, "list": [1, 2]})
        await self.echo("typed", data="{}", headers={"Content-Type": "application/x-mine"})
        await self.echo("query", "GET", params={"q": "a b", "page": "2"}, headers={"X-Test": "t"})
        await self.echo("put", "PUT", data=b"1")
        await self.echo("delete", "DELETE")

    @task
    async def idle(self) -> None:
        await asyncio.sleep(0.05)


def test_requests_arrive_the_same_from_both_clients(
    target: Target, console: Console, http_client: str
) -> None:
    Sends.seen = []
    run(Sends, console=console, http_client=http_client, host=target.url, users=1, iterations=1)
    seen = dict(Sends.seen)
    for echo in seen.values():
        del echo["user_agent"]
    form = "application/x-www-form-urlencoded"
    assert seen == {
        "form": echo_of("POST", form, "user=a+b&city=Z%C3%BCrich"),
        "pairs": echo_of("POST", form, "k=1&k=2"),
        "text": echo_of("POST", "text/plain; charset=utf-8", "héllo"),
        "bytes": echo_of("POST", "application/octet-stream", "\x00raw"),
        "json": echo_of("POST", "application/json", json.dumps({"n": 1, "list": [1, 2]})),
        "typed": echo_of("POST", "application/x-mine", "{}"),
        "query": {**echo_of("GET", "", ""), "query": {"q": "a b", "page": "2"}, "x_test": "t"},
        "put": echo_of("PUT", "application/octet-stream", "1"),
        "delete": echo_of("DELETE", "", ""),
    }
    assert target.counts()["POST /echo 200"] == 6


def echo_of(method: str, content_type: str, body: str) -> dict[str, Any]:
    return {
        "method": method,
        "query": {},
        "content_type": content_type,
        "body": body,
        "x_test": None,
    }


class Redirects(TaskSet):
    """aiohttp's (and browsers') rules: 302 after POST becomes GET, 307 resends the POST."""

    seen: ClassVar[list[tuple[str, Any]]] = []

    @task(on_start=True)
    async def hops(self) -> None:
        for code in (302, 303, 307, 308):
            response = await self.post(
                f"/redirect?code={code}&to=/echo", name=str(code), data=b"payload"
            )
            assert response.redirected, code
            assert response.url == f"{self.base_url}/echo", response.url
            self.seen.append((str(code), (response.status, response.json())))
        kept = await self.get("/redirect", allow_redirects=False)
        self.seen.append(
            ("kept", (kept.status, kept.redirected, kept.url, kept.headers["Location"]))
        )

    @task
    async def idle(self) -> None:
        await asyncio.sleep(0.05)


def test_redirects_change_the_method_as_aiohttp_does(
    target: Target, console: Console, http_client: str
) -> None:
    Redirects.seen = []
    result = run(
        Redirects, console=console, http_client=http_client, host=target.url, users=1, iterations=1
    )
    assert result.all_metrics().tasks[(0, 0)].fail_count == 0, result.all_metrics().errors
    seen = dict(Redirects.seen)
    kept = seen.pop("kept")
    hops = {code: (status, echo["method"], echo["body"]) for code, (status, echo) in seen.items()}
    assert hops == {
        "302": (200, "GET", ""),
        "303": (200, "GET", ""),
        "307": (200, "POST", "payload"),
        "308": (200, "POST", "payload"),
    }
    assert kept == (302, False, f"{target.url}/redirect", "/about/")
    counts = target.counts()
    assert counts["GET /echo 200"] == 2
    assert counts["POST /echo 200"] == 2
    assert counts["GET /redirect 302"] == 1


class Failing(TaskSet):
    """Every kind of failure once per pass; the tasks themselves never raise."""

    @task
    async def failures(self) -> None:
        await self.get("/drop")
        await self.get("/reset")
        await self.get("/slow?ms=300", name="/slow", timeout=0.1)
        await self.get("/loop")
        await self.get("http://nonexistent.invalid/", name="dns")
        await self.get("http://127.0.0.1:9/", name="refused")


def test_failures_get_the_same_records_and_match_what_the_target_counted(
    target: Target, console: Console, http_client: str
) -> None:
    result = run(
        Failing,
        console=console,
        http_client=http_client,
        host=target.url,
        users=2,
        run_time=1,
        no_reset_metrics=True,
    )
    metrics = result.all_metrics()
    expected = {
        "/drop": "server disconnected",
        "/reset": "connection error: Connection reset by peer",
        "/slow": "timeout",
        "/loop": "too many redirects",
        "dns": "dns error: nonexistent.invalid",
        "refused": "connect error: 127.0.0.1:9: connection refused",
    }
    count = {name: metrics.requests[("GET", name)].count for name in expected}
    for name, error in expected.items():
        stats = metrics.requests[("GET", name)]
        assert (stats.fail_count, set(stats.status_codes)) == (count[name], {0})
        assert metrics.errors[f"GET {name}: {error}"] == count[name] >= 2
    assert len(metrics.errors) == len(expected)
    wait_for_count(target, "GET /slow 200", count["/slow"])  # the target finishes what timed out
    assert target.counts() == {
        "GET /drop 0": count["/drop"],
        "GET /reset 0": count["/reset"],
        "GET /slow 200": count["/slow"],
        "GET /loop 302": count["/loop"] * 10,  # the 10th redirect answered is one too many
    }


TLS_TEST = """
from gaggle import TaskSet, task

class Secure(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")
"""


def test_https_with_a_custom_ca_from_ssl_cert_file(tmp_path: Path, http_client: str) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    files = make_certificates(pki)
    test = write_test(tmp_path, TLS_TEST)
    tls = ["--tls-cert", files["server.pem"], "--tls-key", files["server.key"]]
    with target_process(tmp_path, *tls) as port:
        host = f"https://127.0.0.1:{port}"
        args = [test, "--host", host, "-u", "2", "-r", "100", "-t", "1", "--http-client"]
        log = tmp_path / "requests.json"
        env = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
        trusted = run_gaggle(
            "run", *args, http_client, "-m", str(log), env={**env, "SSL_CERT_FILE": files["ca.pem"]}
        )
        assert trusted.returncode == 0, trusted.stderr
        context = ssl.create_default_context(cafile=files["ca.pem"])
        with urllib.request.urlopen(f"{host}/__counts", context=context, timeout=5) as response:
            counts = json.load(response)
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert counts == {"GET / 200": len(entries)}
        assert len(entries) > 10
        assert all(e["success"] for e in entries)
        unknown = run_gaggle("run", *args, http_client, env=env)
        assert unknown.returncode == 0, unknown.stderr
        assert f"tls error: 127.0.0.1:{port}: certificate verify failed" in unknown.stdout


def make_mixed(default_client: str) -> tuple[type[TaskSet], type[TaskSet]]:
    other = next(name for name in HTTP_CLIENTS if name != default_client)

    class Chosen(TaskSet):
        client = other
        agents: ClassVar[set[str]] = set()

        @task
        async def echo(self) -> None:
            self.agents.add((await self.get("/echo")).json()["user_agent"])

    class Default(TaskSet):
        agents: ClassVar[set[str]] = set()

        @task
        async def echo(self) -> None:
            self.agents.add((await self.get("/echo")).json()["user_agent"])

    return Chosen, Default


# what each client says it is
AGENTS = {"aiohttp": "aiohttp/", "httptools": "gaggle-httptools", "reqwest": "pyreqwest/"}


def test_a_task_set_can_choose_its_client(
    target: Target, console: Console, http_client: str
) -> None:
    chosen, default = make_mixed(http_client)
    run(chosen, default, console=console, http_client=http_client, host=target.url, users=2,
        iterations=1)  # fmt: skip
    assert len(chosen.agents) == len(default.agents) == 1  # type: ignore[attr-defined]
    assert AGENTS[http_client] in default.agents.pop()  # type: ignore[attr-defined]
    assert AGENTS[chosen.client or ""] in chosen.agents.pop()  # type: ignore[attr-defined]


def test_an_unknown_client_is_bad_input() -> None:
    class Wrong(TaskSet):
        client = "curl"

        @task
        async def index(self) -> None:
            await self.get("/")

    with pytest.raises(TestDefinitionError, match=r"client='curl' is not allowed; use one of"):
        Attack(Wrong).plan({"host": "http://127.0.0.1:1"})


def test_a_reqwest_request_in_flight_takes_a_cancel_thrown_as_type_value_and_traceback() -> None:
    """A compiled engine (tools/compiled.py) hands a cancel down as ``throw(type, value,
    traceback)``, and the interpreter passes that form on to what the client awaits; pyreqwest's
    own awaitables take the exception alone. The request must end cancelled — the run's stop
    counts it abandoned — not fail with a TypeError."""
    from gaggle.http import RequestOptions
    from gaggle.http.reqwest_client import ReqwestClient

    async def main() -> None:
        accepted: list[asyncio.StreamWriter] = []
        connected = asyncio.Event()

        async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # read nothing, answer nothing
            connected.set()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = ReqwestClient()
        request = client.send("GET", f"http://127.0.0.1:{port}/", RequestOptions(timeout=30))
        try:
            pending = request.send(None)  # in flight: suspended inside pyreqwest
            await connected.wait()
            cancel = asyncio.CancelledError()
            with pytest.raises(asyncio.CancelledError):
                request.throw(type(cancel), cancel, None)
            del pending
        finally:
            request.close()
            await client.close()
            for writer in accepted:
                writer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_httptools_times_each_request_by_its_own_deadline_on_a_kept_alive_connection() -> None:
    """One timer per connection looks at the deadline of the request in flight (httptools_
    connection.roundtrip): a request outliving an earlier request's deadline is not timed out
    by it, and a request with a shorter timeout than an earlier one's is timed out by its own."""
    from gaggle.http import RequestOptions
    from gaggle.http.httptools_client import HttptoolsClient
    from gaggle.http.seam import TIMEOUT

    async def main() -> None:
        answer_now = asyncio.Event()
        heads = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal heads
            while await reader.readuntil(b"\r\n\r\n"):
                heads += 1
                if heads == 2:  # the second request waits until the test lets it be answered
                    await answer_now.wait()
                if heads == 3:  # the third is never answered
                    await asyncio.Event().wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        client = HttptoolsClient()
        loop = asyncio.get_running_loop()
        try:
            first = await client.send("GET", url, RequestOptions(timeout=0.3))
            assert first.status == 200
            first_deadline = loop.time() + 0.3  # no later than this
            second = asyncio.ensure_future(client.send("GET", url, RequestOptions(timeout=60)))
            await asyncio.sleep(first_deadline + 0.2 - loop.time())  # its deadline passed
            assert loop.time() > first_deadline
            assert not second.done()
            answer_now.set()
            assert (await second).status == 200
            started = loop.time()
            third = await client.send("GET", url, RequestOptions(timeout=0.2))
            assert (third.status, third.error) == (0, TIMEOUT)
            assert loop.time() - started < 30  # its own deadline, not the 60 s one before it
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
