"""A private three-node RabbitMQ cluster for the cluster fault test.

Three nodes of the installed `rabbitmq-server`, each a `PrivateRabbitMQ` (own name,
AMQP and distribution ports, config, data and log directories: see
harness/rabbitmq_node.py), sharing one Erlang cookie that no other node on the machine
has (written as each node's `$HOME/.erlang.cookie`). The nodes boot in parallel; the
second and third then join the first (`rabbitmqctl stop_app / join_cluster / start_app`,
the documented manual procedure), which is deterministic where peer discovery at boot
races. Use it as a context manager::

    with PrivateRabbitMQCluster() as cluster:
        cluster.nodes[0].amqp_url
        cluster.leader("relay.race-x")   # the node leading a quorum queue
        cluster.nodes[1].kill()          # SIGKILL one node; .start() brings it back
        with cluster.nodes[1].paused():  # a partition: the others see it gone after ~10 s
            ...
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

from harness.rabbitmq_node import BOOT_TIMEOUT_S, PrivateRabbitMQ
from harness.waiting import wait_until

CLUSTER_SIZE = 3


class ClusterNode(PrivateRabbitMQ):
    """A private node with a given Erlang cookie (the cluster's)."""

    def __init__(self, tag: str, cookie: str) -> None:
        self.cookie = cookie
        super().__init__(tag)

    # pause_minority (RabbitMQ's advice for three nodes or more): a node cut off from the
    # others pauses itself and comes back on its own once it sees them again.
    # net_ticktime 10 s (default 60): a frozen node is found out in 7-13 s, not ~60.
    rabbit_settings = ("{cluster_partition_handling, pause_minority}",)
    other_applications = ("{kernel, [{net_ticktime, 10}]}",)

    def _write_config(self) -> None:
        super()._write_config()
        path = Path(self.base) / ".erlang.cookie"
        path.write_text(self.cookie)
        path.chmod(0o400)  # Erlang refuses a cookie file others can read


class PrivateRabbitMQCluster:
    """Three private nodes clustered together; see the module docstring."""

    def __init__(self, tag: str = "cluster", size: int = CLUSTER_SIZE) -> None:
        cookie = secrets.token_hex(16).upper()
        self.nodes = [ClusterNode(f"{tag}{i}", cookie) for i in range(size)]

    def start(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        self._on_every_node(lambda node: node.start(timeout))
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            for command in (("stop_app",), ("join_cluster", seed.nodename), ("start_app",)):
                output = node.ctl(*command, timeout=60.0)
                if "Error" in output:
                    raise RuntimeError(f"{node.nodename} {command}: {output}")
            node.wait_until_ready(timeout)
        wait_until(
            lambda: len(self.running_nodes()) == len(self.nodes),
            timeout,
            "every node to be running in the cluster",
            poll_s=0.5,
        )

    def restart(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        """Stop every node (gracefully, together), then boot them together: a clustered
        node waits at boot for the others it last saw, so one at a time would not do."""
        self._on_every_node(lambda node: node.stop())
        self._on_every_node(lambda node: node.start(timeout))
        wait_until(
            lambda: len(self.running_nodes()) == len(self.nodes),
            timeout,
            "every node to be running in the cluster again",
            poll_s=0.5,
        )

    def _on_every_node(self, action) -> None:
        errors: list[BaseException] = []

        def run(node: ClusterNode) -> None:
            try:
                action(node)
            except BaseException as error:  # reported below, from the main thread
                errors.append(error)

        threads = [threading.Thread(target=run, args=(node,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def running_nodes(self, via: PrivateRabbitMQ | None = None) -> list[str]:
        """The cluster's running nodes, as a running node (`via`) sees them."""
        via = via or next(node for node in self.nodes if node.running())
        output = via.ctl("cluster_status", "--formatter", "json", "--quiet")
        try:
            return json.loads(output).get("running_nodes", [])
        except ValueError:
            return []

    def node(self, nodename: str) -> ClusterNode:
        return next(node for node in self.nodes if node.nodename == nodename)

    def leader(self, queue: str) -> ClusterNode:
        """The node that leads quorum queue `queue` now."""
        via = next(node for node in self.nodes if node.running())
        columns = ("name", "leader", "--formatter", "json", "--quiet")
        for row in json.loads(via.ctl("list_queues", *columns)):
            if row["name"] == queue:
                return self.node(row["leader"])
        raise LookupError(f"no queue {queue} in the cluster")

    def queue_members(self, queue: str) -> list[str]:
        via = next(node for node in self.nodes if node.running())
        columns = ("name", "members", "--formatter", "json", "--quiet")
        rows = json.loads(via.ctl("list_queues", *columns))
        return next((row["members"] for row in rows if row["name"] == queue), [])

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> PrivateRabbitMQCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
