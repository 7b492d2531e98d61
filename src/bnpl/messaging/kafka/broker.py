"""A local Apache Kafka cluster in KRaft mode: its jars installed once with Maven, its nodes
started as JVM processes (`bnpl kafka`, and the Kafka tests' set-up).

The broker is Apache Kafka's own (`org.apache.kafka:kafka_2.13` from Maven Central, run by the
Java 17 of the machine), not an imitation: `install` writes a one-dependency pom beside the
jars and lets `mvn dependency:copy-dependencies` bring the broker and everything it needs into
`<data dir>/kafka/<version>/libs`, once (a second call finds them there). Each node is a
combined broker and controller; with three nodes, topics get three replicas and
`min.insync.replicas=2`, so one node may die without losing an acknowledged write.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

KAFKA_VERSION = "4.4.0"
# The binding of Kafka's slf4j 1.x logging to log4j2, as in Kafka's own distribution.
LOG4J_VERSION = "2.24.3"
HOST = "127.0.0.1"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>bnpl.local</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = STDOUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""

STARTED = "Kafka Server started"


class KafkaInstallError(RuntimeError):
    pass


def install(data_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """The folder of the broker's jars, downloaded with Maven the first time."""
    home = (data_dir / "kafka" / version).resolve()
    libs = home / "libs"
    if (libs / f"kafka_2.13-{version}.jar").exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes installing at once: one downloads
        if (libs / f"kafka_2.13-{version}.jar").exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaInstallError("Maven (`mvn`) is needed to install the Kafka broker")
        (home / "pom.xml").write_text(POM.format(version=version, log4j=LOG4J_VERSION))
        partial = home / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        done = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(home / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={partial}",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise KafkaInstallError(f"mvn failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)  # complete or absent, never half there
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
        return True
    except OSError:
        return False


@dataclass
class Node:
    node_id: int
    port: int  # clients
    controller_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.folder / "broker.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalCluster:
    """`nodes` combined broker+controller nodes on loopback; `start()`, then `stop()`.

    `base_port` 0 takes free ports (tests); otherwise node i listens on `base_port + i` for
    clients and `base_port + 100 + i` for the controllers' quorum. The folder keeps the nodes'
    logs and data, so a cluster started again on the same folder has its topics still.
    """

    libs: Path
    folder: Path
    nodes: int = 1
    base_port: int = 9092
    heap: str = "512m"
    java: str = "java"
    members: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.folder = self.folder.resolve()
        for i in range(self.nodes):
            port = free_port() if self.base_port == 0 else self.base_port + i
            controller = free_port() if self.base_port == 0 else self.base_port + 100 + i
            self.members.append(Node(i + 1, port, controller, self.folder / f"node-{i + 1}"))

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{n.port}" for n in self.members)

    @property
    def replication(self) -> int:
        return 3 if self.nodes >= 3 else 1

    @property
    def min_insync(self) -> int:
        return 2 if self.replication >= 3 else 1

    def _properties(self, node: Node) -> str:
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.members)
        replication, isr = self.replication, self.min_insync
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={node.node_id}",
                f"controller.quorum.voters={voters}",
                f"listeners=PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{node.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={node.folder / 'data'}",
                # Topics are created by the platform, with its partitions and replication.
                "auto.create.topics.enable=false",
                f"default.replication.factor={replication}",
                f"min.insync.replicas={isr}",
                f"offsets.topic.replication.factor={replication}",
                "offsets.topic.num.partitions=10",
                f"transaction.state.log.replication.factor={replication}",
                f"transaction.state.log.min.isr={isr}",
                "transaction.state.log.num.partitions=4",
                f"share.coordinator.state.topic.replication.factor={replication}",
                f"share.coordinator.state.topic.min.isr={isr}",
                # A small machine: few threads, groups formed at once, short sessions allowed
                # (a consumer that dies is replaced within seconds).
                "num.network.threads=2",
                "num.io.threads=2",
                "background.threads=2",
                "num.recovery.threads.per.data.dir=1",
                "group.initial.rebalance.delay.ms=0",
                "group.min.session.timeout.ms=1000",
                "unclean.leader.election.enable=false",
                "",
            ]
        )

    def _format(self, node: Node) -> None:
        """Write the node's configuration; format its storage the first time."""
        node.folder.mkdir(parents=True, exist_ok=True)
        (node.folder / "server.properties").write_text(self._properties(node))
        (self.folder / "log4j2.properties").write_text(LOG4J2)
        if (node.folder / "data" / "meta.properties").exists():
            return
        cluster_file = self.folder / "cluster.id"
        if not cluster_file.exists():
            # Kafka's cluster ids are 16 random bytes in url-safe base64 without padding.
            raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            cluster_file.write_text(raw)
        done = subprocess.run(
            [
                *self._java("kafka.tools.StorageTool"),
                "format",
                "-t",
                cluster_file.read_text().strip(),
                "-c",
                str(node.folder / "server.properties"),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"formatting node {node.node_id} failed: {done.stderr[-2000:]}")

    def _java(self, main: str, heap: str = "256m") -> list[str]:
        return [
            self.java,
            f"-Xmx{heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            main,
        ]

    def start(self, timeout: float = 90.0) -> None:
        """Start every node and return once each says it started and takes connections."""
        for node in self.members:
            self._format(node)
        for node in self.members:
            self._launch(node)
        self._wait(self.members, timeout)

    def _launch(self, node: Node) -> None:
        log = open(node.log_file, "ab")  # noqa: SIM115 (the JVM writes to it until it ends)
        log.write(f"--- starting {time.strftime('%H:%M:%S')}\n".encode())
        log.flush()
        node.process = subprocess.Popen(
            [*self._java("kafka.Kafka", self.heap), str(node.folder / "server.properties")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches `bnpl kafka`, which stops the nodes
        )
        log.close()
        node.__dict__["log_offset"] = node.log_file.stat().st_size

    def _wait(self, nodes: list[Node], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(nodes)
        while waiting:
            for node in list(waiting):
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(
                        f"Kafka node {node.node_id} exited ({node.process.returncode}):\n"
                        + node.log_file.read_text()[-3000:]
                    )
                with open(node.log_file, "rb") as f:
                    f.seek(node.__dict__.get("log_offset", 0))
                    started = STARTED.encode() in f.read()
                if started and _answers(node.port):
                    waiting.remove(node)
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka nodes {[n.node_id for n in waiting]} did not start")
            time.sleep(0.1)

    def stop_node(self, node_id: int, kill: bool = False, timeout: float = 30.0) -> None:
        """Stop one node: SIGTERM (a clean shutdown) or, with `kill`, SIGKILL (a crash)."""
        node = self.members[node_id - 1]
        if node.process is None:
            return
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                node.process.wait(timeout)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)
        node.process = None

    def start_node(self, node_id: int, timeout: float = 90.0) -> None:
        node = self.members[node_id - 1]
        if node.running:
            return
        self._launch(node)
        self._wait([node], timeout)

    def stop(self, timeout: float = 30.0) -> None:
        for node in self.members:
            if node.running and node.process is not None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.members:
            self.stop_node(node.node_id, timeout=timeout)

    def wait(self) -> int | None:
        """Block until a node exits; its exit code."""
        while True:
            for node in self.members:
                if node.process is not None and node.process.poll() is not None:
                    return node.process.returncode
            time.sleep(0.5)


@contextlib.contextmanager
def running_cluster(
    data_dir: Path, folder: Path, nodes: int = 1, base_port: int = 0, heap: str = "512m"
) -> Iterator[LocalCluster]:
    """A started cluster (jars installed first if need be), stopped on the way out."""
    cluster = LocalCluster(install(data_dir), folder, nodes, base_port, heap)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
