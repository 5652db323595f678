"""A private RabbitMQ node for tests that stop, kill or freeze a broker.

The shared node on 127.0.0.1:5672 is never touched: this starts a second node of the
installed `rabbitmq-server` with its own node name (`rw-<tag>-<pid>@localhost`), its own
AMQP and distribution ports (free ones, picked at start), and its own config file, data
(mnesia), log directory, enabled-plugins file (no plugins) and Erlang cookie, all in one
temporary directory. It registers with the epmd already running on the machine, which is
shared by design (epmd only maps node names to ports).

Use it as a pytest fixture (one node for the whole test session: booting takes five to
ten seconds, a restart about as long) ::

    from tests.private_rabbitmq import private_rabbitmq  # noqa: F401  (a fixture)

    def test_something(private_rabbitmq):
        url = private_rabbitmq.amqp_url      # amqp://guest:guest@127.0.0.1:<port>
        private_rabbitmq.restart()           # graceful stop (SIGTERM) + start, data kept
        private_rabbitmq.kill()              # SIGKILL the whole node; start() again later
        with private_rabbitmq.paused():      # SIGSTOP ... SIGCONT: a hung broker
            ...

or as a context manager anywhere (`with PrivateRabbitMQ() as node: ...`). The fixture
makes sure the node is running and not paused before each test gets it, so a test that
killed it does not break the next one; tests must still use unique queue/exchange names.

Durable queues and persistent messages survive stop()/start() and kill()/start(), since
the node name and data directory stay the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import amqp
import pytest

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
BOOT_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    def _write_config(self) -> None:
        # Classic Erlang-term config: it skips the cuttlefish schema step of a .conf file.
        (self.base / "rabbitmq.config").write_text(
            "[{rabbit, [\n"
            f'  {{tcp_listeners, [{{"127.0.0.1", {self.amqp_port}}}]}},\n'
            "  {disk_free_limit, 1000000}\n"
            "]}].\n"
        )
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"RabbitMQ node {self.nodename} exited:\n{self.log_tail()}")
            if self.accepts_amqp():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.nodename} not ready after {timeout} s:\n{self.log_tail()}")

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.amqp_port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)

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


def require_rabbitmq_server() -> None:
    from tests.conftest import IN_CI

    if rabbitmq_installed():
        return
    message = f"{RABBITMQ_SERVER} is not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI must install rabbitmq-server)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def private_rabbitmq_node() -> Iterator[PrivateRabbitMQ]:
    """One private node for the session (booting costs seconds); killed at the end."""
    require_rabbitmq_server()
    with PrivateRabbitMQ() as node:
        yield node


@pytest.fixture
def private_rabbitmq(private_rabbitmq_node: PrivateRabbitMQ) -> PrivateRabbitMQ:
    """The module's private node, running and unpaused when the test starts."""
    private_rabbitmq_node.resume()
    if not private_rabbitmq_node.running():
        private_rabbitmq_node.start()
    return private_rabbitmq_node
