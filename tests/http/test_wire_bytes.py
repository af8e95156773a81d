"""Wire details every HTTP client must get right, against a server that writes exact bytes.

The aiohttp target of the other client tests cannot send a body delimited by the end of the
connection, an interim 1xx, or a HEAD answer whose Content-Length announces a body it never
sends; a small asyncio server here answers each path with fixed bytes and counts connections.
Each test runs once per client through the seam (``CLIENTS[name]().send``), on real sockets.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from gaggle.http import CLIENTS, Exchange, Headers, HttpClient, RequestOptions
from gaggle.http.seam import Params

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
GZIPPED = gzip.compress(b"squeezed " * 100)
DEFLATED = zlib.compress(b"deflated " * 100)
ANSWERS = {
    "/ok": OK,
    "/gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
    % (len(GZIPPED), GZIPPED),
    "/deflate": b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s"
    % (len(DEFLATED), DEFLATED),
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "/until-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it",
    "/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
    "/interim": b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
    "/cookies": b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\n"
    b"Content-Length: 0\r\n\r\n",
    "/headers": b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nx-Odd-CASE: v\r\n"
    b"Content-Length: 0\r\n\r\n",
    "/login": b"HTTP/1.1 302 Found\r\nSet-Cookie: s=1; Path=/\r\nLocation: /ok\r\n"
    b"Content-Length: 5\r\n\r\nmoved",
    "/truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
    "/extra": OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra",  # one answer too many
}
HEAD_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"  # the headers a GET would get


@dataclass
class WireServer:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def drop_idle_connections(self) -> None:
        for writer in self.writers:
            writer.close()


@asynccontextmanager
async def wire_server() -> AsyncIterator[WireServer]:
    state = WireServer("")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                state.requests.append(head)
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                await reader.readexactly(length)
                method, target = head.split(b" ")[:2]
                path = target.partition(b"?")[0]
                if path == b"/slow":
                    await asyncio.sleep(0.2)
                    path = b"/ok"
                if path == b"/away":  # /away?to=URL: a 307 there
                    to = target.partition(b"?to=")[2]
                    answer = b"HTTP/1.1 307 Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % to
                else:
                    answer = HEAD_ANSWER if method == b"HEAD" else ANSWERS[path.decode()]
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer or path == b"/truncated":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.drop_idle_connections()
        server.close()
        await server.wait_closed()


Scenario = Callable[[HttpClient, WireServer], Awaitable[None]]


def on_the_wire(http_client: str, scenario: Scenario) -> None:
    async def main() -> None:
        client = CLIENTS[http_client]()
        try:
            async with wire_server() as server:
                await asyncio.wait_for(scenario(client, server), 10)
        finally:
            await client.close()

    asyncio.run(main())


async def get(client: HttpClient, server: WireServer, path: str, method: str = "GET") -> Exchange:
    return await client.send(method, server.url + path, RequestOptions())


def test_bodies_are_decoded_and_reassembled(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        bodies = {path: (await get(client, server, path)).body for path in ANSWERS}
        assert bodies["/gzip"] == b"squeezed " * 100
        assert bodies["/deflate"] == b"deflated " * 100
        assert bodies["/chunked"] == b"hello world"
        assert bodies["/until-close"] == b"all of it"
        assert bodies["/interim"] == b"ok"

    on_the_wire(http_client, scenario)


def test_one_keep_alive_connection_serves_a_user_in_turn(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        for _ in range(5):
            assert (await get(client, server, "/ok")).status == 200
        head = await get(client, server, "/ok", "HEAD")  # announces 100 bytes, sends none
        assert (head.status, head.body) == (200, b"")
        assert (await get(client, server, "/ok")).body == b"ok"
        assert server.connections == 1

    on_the_wire(http_client, scenario)


def test_a_closed_connection_is_replaced_not_failed(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        assert (await get(client, server, "/close")).body == b"bye"
        assert (await get(client, server, "/ok")).status == 200
        server.drop_idle_connections()  # as a server's keep-alive timeout does
        await asyncio.sleep(0.2)
        assert (await get(client, server, "/ok")).status == 200
        assert server.connections == 3

    on_the_wire(http_client, scenario)


def test_concurrent_requests_of_one_user_each_get_their_answer(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        answers = await asyncio.gather(*(get(client, server, "/slow") for _ in range(3)))
        assert [(a.status, a.body) for a in answers] == [(200, b"ok")] * 3
        assert server.connections == 3

    on_the_wire(http_client, scenario)


def test_a_body_cut_short_is_a_failure(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        cut = await get(client, server, "/truncated")
        assert (cut.status, cut.error) == (0, "response payload incomplete")
        assert (await get(client, server, "/ok")).status == 200

    on_the_wire(http_client, scenario)


def test_an_answer_nobody_asked_for_is_never_taken_for_the_next_one(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        assert (await get(client, server, "/extra")).body == b"ok"
        await asyncio.sleep(0.1)
        assert (await get(client, server, "/ok")).body == b"ok"

    on_the_wire(http_client, scenario)


def test_a_task_s_headers_replace_the_client_s_defaults(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        mine = {"User-Agent": "mine/1", "Accept": "application/json", "Host": "example.test"}
        await client.send("GET", server.url + "/ok", RequestOptions(headers=mine))
        lines = [line.split(b":", 1) for line in server.requests[-1].split(b"\r\n")[1:] if line]
        sent = [(name.strip().lower().decode(), value.strip().decode()) for name, value in lines]
        for name, value in mine.items():
            assert [v for n, v in sent if n == name.lower()] == [value], sent

    on_the_wire(http_client, scenario)


def test_headers_read_the_same_from_every_client(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        headers = (await get(client, server, "/headers")).headers
        assert isinstance(headers, Headers)
        assert headers.getall("set-cookie") == headers.getall("SET-COOKIE") == ["a=1", "b=2"]
        assert headers["set-cookie"] == headers.get("Set-Cookie") == "a=1"  # the first line
        assert headers["CONTENT-LENGTH"] == headers.get("content-length") == "0"
        assert "X-ODD-CASE" in headers
        assert ("Location" in headers, headers.get("Location"), headers.getall("Location")) == (
            False,
            None,
            [],
        )
        # the server's spelling; reqwest lowers names and keeps no record of it (title case)
        odd = "X-Odd-Case" if http_client == "reqwest" else "x-Odd-CASE"
        lines = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), (odd, "v"), ("Content-Length", "0")]
        assert list(headers.items()) == lines
        assert list(headers) == [name for name, _ in lines]
        assert len(headers) == 4
        refused = await client.send("GET", "http://127.0.0.1:9/", RequestOptions())
        assert (refused.status, len(refused.headers)) == (0, 0)

    on_the_wire(http_client, scenario)


def test_params_reach_the_target_as_the_same_query_line(http_client: str) -> None:
    cases: list[tuple[str, Params, bytes]] = [
        ("/ok", {"q": "a b", "city": "Zürich"}, b"/ok?q=a+b&city=Z%C3%BCrich"),
        ("/ok", [("k", "1"), ("k", "2")], b"/ok?k=1&k=2"),
        ("/ok", (("k", "x/y"), ("k", "*~'")), b"/ok?k=x%2Fy&k=%2A~%27"),
        ("/ok?page=1", {"q": "a b"}, b"/ok?page=1&q=a+b"),
        ("/ok?", {"q": "1"}, b"/ok?q=1"),
        ("/ok#top", {"q": "1"}, b"/ok?q=1"),  # the fragment stays in the client
    ]

    async def scenario(client: HttpClient, server: WireServer) -> None:
        for path, params, _ in cases:
            answer = await client.send("GET", server.url + path, RequestOptions(params=params))
            assert answer.status == 200, answer.error
        sent = [head.split(b" ")[1] for head in server.requests]
        assert sent == [line for _, _, line in cases]

    on_the_wire(http_client, scenario)


def test_a_cookie_set_by_a_redirect_goes_with_the_next_hop(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        landed = await client.send("POST", server.url + "/login", RequestOptions(data=b"x"))
        assert (landed.status, landed.body, landed.redirected) == (200, b"ok", True)
        assert landed.final_url == server.url + "/ok"
        hop = server.requests[-1]
        assert hop.startswith(b"GET /ok ")  # 302 after a POST: a GET
        assert b"\r\ncookie: s=1\r\n" in hop.lower()
        assert server.connections == 1  # the redirect's body was read: its connection kept

    on_the_wire(http_client, scenario)


def test_a_task_s_credentials_stay_with_their_origin(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        mine = {"Authorization": "Bearer t", "Cookie": "c=1", "X-Other": "kept"}
        async with wire_server() as other:
            url = f"{server.url}/away?to={other.url}/ok"
            landed = await client.send("GET", url, RequestOptions(headers=mine))
            assert (landed.status, landed.final_url) == (200, other.url + "/ok")
            there = other.requests[-1].lower()
        assert b"bearer t" in server.requests[-1].lower()
        assert (b"bearer t" in there, b"c=1" in there, b"x-other: kept" in there) == (
            False,
            False,
            True,
        )

    on_the_wire(http_client, scenario)


def test_cookies_set_together_are_all_sent_back(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        await get(client, server, "/cookies")
        await get(client, server, "/ok")
        lines = server.requests[-1].split(b"\r\n")
        cookie = next(line for line in lines if line.lower().startswith(b"cookie:"))
        assert sorted(cookie.split(b":", 1)[1].strip().split(b"; ")) == [b"a=1", b"b=2"]

    on_the_wire(http_client, scenario)


def test_line_breaks_in_a_header_never_reach_the_wire(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        options = RequestOptions(headers={"X-Bad\r\nInjected": "v"})
        with suppress(ValueError):  # refusing to send is right too
            await client.send("GET", server.url + "/ok", options)
        assert (await get(client, server, "/ok")).status == 200
        assert len(server.requests) == 1
        assert b"Injected" not in server.requests[0]

    on_the_wire(http_client, scenario)


def test_an_invalid_url_is_a_failure_with_the_same_text(http_client: str) -> None:
    async def scenario(client: HttpClient, server: WireServer) -> None:
        for url in ("http://127.0.0.1:99999/", "ftp://127.0.0.1/", "http://[::1/"):
            failed = await client.send("GET", url, RequestOptions())
            assert (failed.status, failed.error) == (0, f"invalid url: {url}")

    on_the_wire(http_client, scenario)
