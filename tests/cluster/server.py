"""The local cluster as one object: API server (and kubelet) on an event loop in a thread.

    cluster = Cluster(workdir)          # or Cluster(workdir, kubelet=False) for the API alone
    cluster.start()                     # listens on 127.0.0.1, writes workdir/kubeconfig
    ...                                 # kubectl --kubeconfig cluster.kubeconfig ...
    cluster.stop()                      # kills pods, removes namespaces, veths, hosts files

The API is served twice by one app: plain HTTP on 127.0.0.1 without credentials (``url``, the
kubeconfig: for the host's tools), and HTTPS for pods (``incluster``: on the bridge address,
port 443 unless taken, in netns mode; on 127.0.0.1 otherwise) with a certificate from the
cluster's own CA (``pki``, removed at stop). Pods get that address, the CA and a token of their
ServiceAccount (see ``serviceaccount``). Requests are authenticated, never authorized: which
identity made each is recorded, ``requests_by(namespace, serviceaccount)`` reads it back.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from tests.cluster import pki
from tests.cluster.api import LOGS, build_app
from tests.cluster.controllers import Controllers
from tests.cluster.resources import Registry
from tests.cluster.serviceaccount import Audit, Endpoint
from tests.cluster.store import Store
from tests.cluster.watch import stop_all

T = TypeVar("T")

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: gaggle-local
  cluster:
    server: {url}
users:
- name: gaggle-local
  user: {{}}
contexts:
- name: gaggle-local
  context:
    cluster: gaggle-local
    user: gaggle-local
    namespace: {namespace}
current-context: gaggle-local
"""


class Cluster:
    def __init__(
        self,
        workdir: Path,
        kubelet: bool = True,
        network: str = "auto",
        venv_bin: Path | None = None,
        port: int = 0,
    ) -> None:
        """``network``: "netns" (a network namespace per pod, needs root), "host" (pods share
        the host's network; podIP 127.0.0.1) or "auto" (netns when root and iproute2 work)."""
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        self.port = port
        self.url = ""
        self.want_kubelet = kubelet
        self.network_mode = network
        self.venv_bin = venv_bin or Path(sys.executable).parent
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        self.started = threading.Event()
        self.failure: BaseException | None = None
        self.kubelet: Any = None
        self.store: Store | None = None
        self.audit = Audit()
        self.incluster: Endpoint | None = None  # the HTTPS address pods are given
        self.pki: pki.Pki | None = None
        self._runner: web.AppRunner | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.thread = threading.Thread(target=self._run, name="gaggle-local-cluster", daemon=True)
        self.thread.start()
        if not self.started.wait(timeout) or self.failure is not None:
            self.stop()
            raise RuntimeError(f"the local cluster did not start: {self.failure!r}")
        self.write_kubeconfig(self.kubeconfig)
        return self

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        path.write_text(KUBECONFIG.format(url=self.url, namespace=namespace))
        return path

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._setup())
        except BaseException as error:  # reported to start()
            self.failure = error
            self.started.set()
            return
        self.started.set()
        self.loop.run_forever()

    async def _setup(self) -> None:
        self.store = Store(Registry())
        self.controllers = Controllers(self.store)
        app = build_app(self.store, (self.audit.middleware,))
        if self.want_kubelet:
            from tests.cluster.kubelet import Kubelet

            self.kubelet = Kubelet(
                self.store, self.workdir / "pods", self.venv_bin, self.network_mode
            )
            await self.kubelet.start()
            app[LOGS] = self.kubelet.logs
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.port}"
        await self._serve_https()

    async def _serve_https(self) -> None:
        """HTTPS where pods reach the host, with a certificate from a new cluster CA."""
        assert self._runner is not None
        host = self.kubelet.host_ip if self.kubelet is not None else "127.0.0.1"
        self.pki = await asyncio.to_thread(pki.make, self.workdir / "pki", [host])
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pki.cert, self.pki.key)
        # 443 as in a cluster, on the bridge address only this cluster has; any port on loopback
        ports = [443, 0] if host != "127.0.0.1" else [0]
        for port in ports:
            site = web.TCPSite(self._runner, host, port, ssl_context=context)
            try:
                await site.start()
                break
            except OSError:
                await site.stop()
                if port == ports[-1]:
                    raise
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.incluster = Endpoint(host, port, self.pki.ca)
        if self.kubelet is not None:
            self.kubelet.api = self.incluster

    async def _teardown(self) -> None:
        if self.store is not None:
            stop_all(self.store)
        if self.kubelet is not None:
            await self.kubelet.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.pki is not None:
            self.pki.remove()
        for task in list((getattr(self, "controllers", None) and self.controllers.tasks) or []):
            task.cancel()

    def stop(self) -> None:
        """Stop everything this cluster started; safe to call twice and after a failed start."""
        if self.thread is None:
            return
        if self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._teardown(), self.loop).result(60)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.thread = None

    # -- for tests -------------------------------------------------------------------------------

    def call(self, fn: Callable[[], T], timeout: float = 10) -> T:
        """Run ``fn`` on the cluster's loop (where the store lives) and return its result."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as error:
                future.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def requests_by(self, namespace: str, serviceaccount: str) -> list[tuple[str, str]]:
        """(method, path) of the recent API requests made with this ServiceAccount's token,
        oldest first: what a pod running as it did (nothing was forbidden it: no RBAC here)."""
        return self.call(lambda: self.audit.by(namespace, serviceaccount))

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
