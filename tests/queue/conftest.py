"""The queue tests' broker (each test on both, real: Redis in a flushed database of its own,
RabbitMQ in this session's vhost, tests/services.py), its folder, store and producer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from heimdex.queue.broker import StageQueue
from heimdex.store.sqlite import SqliteStore
from tests import services
from tests.queue.harness import REDIS_DB, settings, settings_for


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request) -> str:
    return request.param


@pytest.fixture
def home(tmp_path, broker) -> Iterator[Path]:
    url = services.broker_url(broker, REDIS_DB)
    if broker == "redis":
        redis.Redis.from_url(url).flushdb()
    else:
        purge = StageQueue(settings_for(tmp_path, url), None)
        purge.counts()  # declares the queues, so that purging them finds them
        purge.broker.flush_all()
        purge.stop()
    (tmp_path / "url").write_text(url)
    yield tmp_path
    if broker == "redis":
        redis.Redis.from_url(url).flushdb()


@pytest.fixture
def store(home) -> Iterator[SqliteStore]:
    s = SqliteStore(home / "heimdex.db")
    yield s
    s.close()


@pytest.fixture
def producer(home, store) -> Iterator[StageQueue]:
    q = StageQueue(settings(home), store)
    yield q
    q.stop()
