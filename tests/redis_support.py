"""A real redis-server on a free loopback port, that a test may stop and start again on the same port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

START_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    """The redis-server to start; the test is skipped without it or without the redis package."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): team-cache tests need a real Redis")
    pytest.importorskip("redis", reason="the redis package is not installed (pip install 'pytest-seedreplay[redis]')")
    return binary


class ServerExited(Exception):
    """redis-server ended before it answered: most often its port was taken meanwhile (a port that
    free_port() found free is not held, and another process's outgoing connection may get it)."""


FIRST_START_TRIES = 3  # a server's first start takes other free ports when its own were taken


def start_redis_server(binary: str, port: int, workdir: Path, *options: str, what: str = "redis-server") -> subprocess.Popen:
    """One redis-server on 127.0.0.1:`port`, no persistence, its files in `workdir`, with `options`
    (a cluster node's); returned once it answers PING. `what` names it if it does not start;
    ServerExited when it ended first (its log is in `workdir`/redis.log)."""
    import redis

    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", *options, "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_SECONDS
    with redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1) as client:
        while True:
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                if proc.poll() is not None:
                    raise ServerExited(f"{what} exited before it answered on port {port}: {_tail(log)}") from None
                if time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"{what} did not start on port {port}: {_tail(log)}")


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else "(no output)"


class RedisServer:
    """`redis-server` on 127.0.0.1:`port`, no persistence; `stop()` and `start()` keep the port."""

    def __init__(self, workdir: Path):
        self.binary = redis_binary()
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.started = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.proc is not None or self.started:  # a restart keeps its port: the tests' clients name it
            self.proc = start_redis_server(self.binary, self.port, self.workdir)
            return
        for attempt in range(FIRST_START_TRIES):
            try:
                self.proc = start_redis_server(self.binary, self.port, self.workdir)
                break
            except ServerExited:
                if attempt == FIRST_START_TRIES - 1:
                    raise
                self.port = free_port()
        self.started = True

    def stop(self) -> None:
        """Gone, as a crashed server is: SIGKILL, then wait until the port refuses connections."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)


@pytest.fixture
def redis_server(tmp_path: Path):
    """A fresh redis-server for one test (it may stop and restart it)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory):
    """One redis-server for the tests that never stop it; each takes its own key prefix."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


class RedisCluster:
    """Three `redis-server --cluster-enabled yes` primaries on free loopback ports (no replicas), joined by
    `redis-cli --cluster create`. `stop_node(i)`/`start_node(i)` take one primary away and bring it back
    on its port and with its slots (its nodes.conf stays in its directory; its data does not)."""

    NODE_TIMEOUT_MS = 1000  # how soon the others call a silent node failed; short, for the tests

    def __init__(self, workdir: Path, nodes: int = 3):
        self.binary = redis_binary()
        self.cli = shutil.which("redis-cli")
        if self.cli is None:
            pytest.skip("redis-cli is not installed (apt-get install redis-tools): cluster tests need it")
        self.workdir = workdir
        self.ports = [free_port() for _ in range(nodes)]
        self.bus_ports = [free_port() for _ in range(nodes)]  # kept across restarts: nodes.conf names them
        self.procs: list[subprocess.Popen | None] = [None] * nodes

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        for index in range(len(self.ports)):
            for attempt in range(FIRST_START_TRIES):
                try:
                    self.start_node(index)
                    break
                except ServerExited:
                    if attempt == FIRST_START_TRIES - 1:
                        self.stop()
                        raise
                    # Before the cluster is made, a node may take other ports (nodes.conf names them after).
                    self.ports[index], self.bus_ports[index] = free_port(), free_port()
        created = subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            self.stop()
            pytest.fail(f"redis-cli --cluster create failed: {created.stdout[-2000:]}{created.stderr[-2000:]}")
        self.wait_ok()

    def start_node(self, index: int) -> None:
        port = self.ports[index]
        node_dir = self.workdir / f"node-{port}"
        node_dir.mkdir(exist_ok=True)
        self.procs[index] = start_redis_server(
            self.binary,
            port,
            node_dir,
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(self.bus_ports[index]),
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.NODE_TIMEOUT_MS),
            # One primary down must not stop the others answering for their own slots.
            "--cluster-require-full-coverage",
            "no",
            what="redis-server (cluster node)",
        )

    def wait_ok(self, seconds: float = 30.0) -> None:
        """Until every running node says cluster_state:ok and knows every slot."""
        import redis

        deadline = time.monotonic() + seconds
        for index, port in enumerate(self.ports):
            if self.procs[index] is None:
                continue
            with redis.Redis(port=port) as client:
                while True:
                    info = client.cluster("info")
                    if info.get("cluster_state") == "ok" and int(info.get("cluster_slots_ok", 0)) == 16384:
                        break
                    assert time.monotonic() < deadline, f"the cluster did not settle: node {port} says {info}"
                    time.sleep(0.05)

    def stop_node(self, index: int) -> None:
        """Gone, as a crashed node is (SIGKILL)."""
        proc = self.procs[index]
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
            self.procs[index] = None

    def stop(self) -> None:
        for index in range(len(self.ports)):
            self.stop_node(index)

    def node_of(self, key: str) -> int:
        """Which node (index) serves `key`'s slot."""
        import redis

        with redis.Redis(port=self.ports[0]) as client:
            slot = client.cluster("keyslot", key)
            for start, end, primary, *_ in client.cluster("slots"):
                if start <= slot <= end:
                    return self.ports.index(primary[1])
        raise AssertionError(f"no node serves the slot of {key!r}")


@pytest.fixture
def redis_cluster(tmp_path: Path):
    """A fresh three-node cluster for one test (it may stop and restart a node)."""
    cluster = RedisCluster(tmp_path)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def shared_redis_cluster(tmp_path_factory):
    """One three-node cluster for the tests that never stop a node; each takes its own key prefix."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    yield cluster
    cluster.stop()
