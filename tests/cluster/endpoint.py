"""Our node's HTTPS endpoint, which the API server calls for ``kubectl logs``.

A kubelet serves ``/containerLogs/<namespace>/<pod>/<container>`` on its port (the Node's
``daemonEndpoints``); the API server proxies ``pods/log`` there with its client certificate, which
is checked against the cluster CA. ``follow``, ``tailLines`` and ``previous`` work as on a
kubelet; a container backing off before a restart shows its last run's log. Not served:
exec, attach, port-forward, metrics, ``timestamps``, ``sinceSeconds``, ``limitBytes``.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from tests.cluster.kubelet import Kubelet


async def serve(kubelet: Kubelet) -> tuple[web.AppRunner, int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(kubelet.ca))
    context.load_cert_chain(kubelet.serving.cert, kubelet.serving.key)
    context.verify_mode = ssl.CERT_REQUIRED  # only the API server's client certificate
    app = web.Application()
    app.router.add_get(
        "/containerLogs/{namespace}/{pod}/{container}", functools.partial(_logs, kubelet)
    )
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, kubelet.host_ip, 0, ssl_context=context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def _logs(kubelet: Kubelet, request: web.Request) -> web.StreamResponse:
    ns, name = request.match_info["namespace"], request.match_info["pod"]
    container = request.match_info["container"]
    query = request.query
    run = next((r for r in kubelet.runs.values() if (r.namespace, r.name) == (ns, name)), None)
    if run is None or container not in run.restarts:
        return web.Response(status=404, text=f'container "{container}" in pod "{name}" not found')
    previous = query.get("previous") == "true"
    restart = run.restarts[container] - (1 if previous else 0)
    path = run.log_path(container, restart)
    if not previous and not path.exists() and restart > 0:  # backing off: the last one's
        restart -= 1
        path = run.log_path(container, restart)
    if restart < 0 or not path.exists():
        message = f'previous terminated container "{container}" in pod "{name}" not found'
        return web.Response(status=400, text=message)
    data = path.read_bytes()
    if "tailLines" in query:
        tail = int(query["tailLines"])
        data = b"".join(data.splitlines(keepends=True)[-tail:]) if tail else b""
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    await response.write(data)
    offset = path.stat().st_size
    while query.get("follow") == "true" and not previous:
        process = run.processes.get(container)
        ended = process is None or process.returncode is not None
        size = path.stat().st_size if path.exists() else offset
        if size > offset:
            with path.open("rb") as log:
                log.seek(offset)
                await response.write(log.read(size - offset))
            offset = size
        elif ended or run.restarts[container] != restart:
            break
        else:
            await asyncio.sleep(0.1)
    await response.write_eof()
    return response


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")
