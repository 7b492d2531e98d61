"""`bnpl kafka`: install Apache Kafka's broker once (Maven) and run a local KRaft cluster."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from bnpl.messaging.kafka.broker import KAFKA_VERSION, LocalCluster, install

kafka = typer.Typer(
    help="A local Apache Kafka cluster (KRaft) for the Kafka bus (BNPL_KAFKA_BOOTSTRAP).",
    invoke_without_command=True,
    add_completion=False,
)

DataDir = Annotated[
    Path, typer.Option(envvar="BNPL_DATA_DIR", help="The project's data folder (jars, logs).")
]


@kafka.callback()
def run(
    ctx: typer.Context,
    brokers: Annotated[int, typer.Option(min=1, max=9, help="Nodes (3: replication 3).")] = 1,
    port: Annotated[
        int, typer.Option(help="First node's client port (0: free ports); node i: port+i.")
    ] = 9092,
    heap: Annotated[str, typer.Option(help="JVM heap of each node.")] = "512m",
    data_dir: DataDir = Path(".bnpl"),
) -> None:
    """Install the broker if need be, start the cluster, print its bootstrap address and run
    until Ctrl-C or SIGTERM, then stop every node cleanly."""
    if ctx.invoked_subcommand is not None:
        return
    libs = install(data_dir)
    folder = data_dir / "kafka" / f"cluster-{brokers}"
    cluster = LocalCluster(libs, folder, nodes=brokers, base_port=port, heap=heap)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        cluster.start()
        typer.echo(
            f"Kafka {KAFKA_VERSION}, {brokers} node(s), replication {cluster.replication}, "
            f"min.insync.replicas {cluster.min_insync}; data in {cluster.folder}",
            err=True,
        )
        typer.echo(f"BNPL_KAFKA_BOOTSTRAP={cluster.bootstrap}", err=True)
        typer.echo(cluster.bootstrap)
        code = cluster.wait()
        typer.echo(f"a Kafka node exited ({code}); stopping the others", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.stop()
        typer.echo("Kafka stopped", err=True)


@kafka.command("install")
def install_command(data_dir: DataDir = Path(".bnpl")) -> None:
    """Download the broker's jars from Maven Central into the data folder (once)."""
    typer.echo(install(data_dir))
