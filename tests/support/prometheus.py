"""A real Prometheus for the tests: Debian's package (installed when missing), started on
127.0.0.1 with a free port, a 1 s scrape interval and its storage in a temporary folder, and
ended by its handle. ``query`` runs PromQL through the HTTP API, as Grafana does."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.support.tools import debian_binary

START_TIMEOUT = 30.0


def prometheus() -> str:
    """The path of prometheus (Debian's package, installed when missing)."""
    return debian_binary("prometheus", "prometheus")


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@contextmanager
def running_prometheus(folder: Path, target: str, labels: dict[str, str]) -> Iterator[str]:
    """Prometheus scraping ``target`` (HOST:PORT) every second, the static ``labels`` added as a
    Kubernetes pod monitor would add them; yields its base URL."""
    config = folder / "prometheus.yml"
    scrape = {"targets": [target], "labels": labels}
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": "gaggle", "static_configs": [scrape]}],
            }
        )
    )
    port = free_port()
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            prometheus(),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()  # our own child, by its handle
            process.wait()
        log.close()


def query(base: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector (empty when the query finds no data)."""
    reply = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def label_values(base: str, label: str, match: str) -> list[str]:
    """What Grafana's ``label_values(match, label)`` variable query lists."""
    params = urllib.parse.urlencode({"match[]": match})
    reply = get(f"{base}/api/v1/label/{label}/values?{params}")
    assert reply["status"] == "success", reply
    values: list[str] = reply["data"]
    return values
