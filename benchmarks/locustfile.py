"""The peer for ``throughput.py``: Locust's fastest user class doing what Bench does in Gaggle.

One GET of the front page per task, no pause between tasks (FastHttpUser, geventhttpclient).
"""

from locust import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self) -> None:
        self.client.get("/")
