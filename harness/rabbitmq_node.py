"""A private RabbitMQ node for tests that stop, kill or freeze a broker.

The shared node on 127.0.0.1:5672 is never touched: this starts a second node of the
installed `rabbitmq-server` with its own node name (`rw-<tag>-<pid>@localhost`), its own
AMQP and distribution ports (free ones, picked at start), and its own config file, data
(mnesia), log directory, enabled-plugins file (no plugins) and Erlang cookie, all in one
temporary directory. It registers with the epmd already running on the machine, which is
shared by design (epmd only maps node names to ports).

The pytest fixtures `private_rabbitmq` (one node for the whole session: booting takes
five to ten seconds) and `private_rabbitmq_node` live in tests/conftest.py. Use a node ::

    url = node.amqp_url      # amqp://guest:guest@127.0.0.1:<port>
    node.restart()           # graceful stop (SIGTERM) + start, data kept
    node.kill()              # SIGKILL the whole node; start() again later
    with node.paused():      # SIGSTOP ... SIGCONT: a hung broker
        ...

or as a context manager (`with PrivateRabbitMQ() as node: ...`). Tests must use unique
queue/exchange names: the session shares one node.

Durable queues and persistent messages survive stop()/start() and kill()/start(), since
the node name and data directory stay the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import amqp

from harness.ports import free_port, listening
from harness.waiting import WaitTimeout, wait_until

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
BOOT_TIMEOUT_S = 60.0


def rabbitmq_installed() -> bool:
    return Path(RABBITMQ_SERVER).exists()


class PrivateRabbitMQ:
    """One private RabbitMQ node; see the module docstring."""

    def __init__(self, tag: str = "fault") -> None:
        self.nodename = f"rw-{tag}-{os.getpid()}-{free_port()}@localhost"
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix=f"rw-rabbitmq-{tag}-"))
        self.process: subprocess.Popen | None = None
        self._write_config()

    @property
    def amqp_url(self) -> str:
        # No trailing slash: carehare (channels-rabbitmq) warns that it means vhost "".
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}"

    @property
    def log_file(self) -> Path:
        return self.base / "log" / f"{self.nodename}.log"

    # Extra Erlang terms for the `rabbit` application and extra application sections of the
    # config file (harness/rabbitmq_cluster.py adds partition handling and net_ticktime).
    rabbit_settings: tuple[str, ...] = ()
    other_applications: tuple[str, ...] = ()

    def _write_config(self) -> None:
        # Classic Erlang-term config: it skips the cuttlefish schema step of a .conf file.
        rabbit = (
            f'{{tcp_listeners, [{{"127.0.0.1", {self.amqp_port}}}]}}',
            "{disk_free_limit, 1000000}",
            *self.rabbit_settings,
        )
        applications = ("{rabbit, [\n  " + ",\n  ".join(rabbit) + "\n]}", *self.other_applications)
        (self.base / "rabbitmq.config").write_text("[" + ",\n ".join(applications) + "].\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        # An empty env file, so /etc/rabbitmq/rabbitmq-env.conf (the shared node's) is not read.
        (self.base / "rabbitmq-env.conf").write_text("")

    def _environment(self) -> dict[str, str]:
        base = str(self.base)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"),
            "LANG": "C.UTF-8",
            # Erlang keeps its cookie in $HOME/.erlang.cookie: a private one per node.
            "HOME": base,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": f"{base}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": f"{base}/rabbitmq.config",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{base}/advanced.config",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{base}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{base}/mnesia",
            "RABBITMQ_LOG_BASE": f"{base}/log",
            "RABBITMQ_PLUGINS_EXPAND_DIR": f"{base}/plugins-expand",
            "RABBITMQ_PID_FILE": f"{base}/rabbitmq.pid",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        """Boot the node (same name and data as before) and wait until AMQP works."""
        if self.running():
            return
        output = (self.base / "server.out").open("ab")
        # A new session: kill() and pause() signal the node's whole process group.
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER],
            cwd=self.base,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        self.wait_until_ready(timeout)

    def wait_until_ready(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        def ready() -> bool:
            if not self.running():
                raise RuntimeError(f"RabbitMQ node {self.nodename} exited:\n{self.log_tail()}")
            return self.accepts_amqp()

        try:
            wait_until(ready, timeout, f"{self.nodename} to accept AMQP", poll_s=0.1)
        except WaitTimeout:
            raise TimeoutError(
                f"{self.nodename} not ready after {timeout} s:\n{self.log_tail()}"
            ) from None

    def ctl(self, *args: str, timeout: float = 30.0) -> str:
        """Run `rabbitmqctl` against this node (e.g. "list_queues", "name", "messages")."""
        result = subprocess.run(
            ["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.nodename, *args],
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return result.stdout + result.stderr

    def log_tail(self, lines: int = 30) -> str:
        """The end of the node's log and console output, for failure messages."""
        parts = []
        for path in (self.base / "server.out", self.log_file):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)

    def accepts_amqp(self) -> bool:
        """True when a client can log in and open a channel (not only a TCP connect)."""
        try:
            with amqp.Connection(
                f"127.0.0.1:{self.amqp_port}", connect_timeout=1, read_timeout=2
            ) as connection:
                connection.channel().close()
            return True
        except Exception:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (SIGTERM, as a service manager does); data kept."""
        if not self.running():
            return
        self._signal(signal.SIGCONT)  # a paused node cannot shut down
        self.process.terminate()  # the wrapper script forwards SIGTERM to the VM
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._wait_port_closed()

    def kill(self) -> None:
        """SIGKILL the node and everything it started: a crash, no clean shutdown."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait(10)
        self._wait_port_closed()

    def restart(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        self.stop()
        self.start(timeout)

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): connections stay open but nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def _signal(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def _wait_port_closed(self, timeout: float = 10.0) -> None:
        """Best effort: a port still open after `timeout` is left to the next start."""
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: not listening(self.amqp_port), timeout, "the AMQP port to close")

    def close(self) -> None:
        """Kill the node and delete its directory."""
        if self.running():
            self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivateRabbitMQ:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
