"""``LocalRayCluster``: K Ray node processes on this machine, each with its own CPU share.

Each node is a ``ray start --block`` process in a session of its own (so it and everything it
starts can be stopped together, without touching any other Ray on the machine): the first is the
head (``--head``), the others join it (``--address``). Every node advertises ``num_cpus`` logical
CPUs to Ray's scheduler and, with ``pin``, runs on its own physical cores (CPU affinity, inherited
by its raylet and workers), so a node is a stand-in for a machine of that size.

The nodes listen on a loopback address (``127.0.0.2``: Ray turns ``127.0.0.1`` into the host's
interface address, any other loopback address is kept as given). Ray's token authentication stays
on: a fresh token is made for the cluster and given to every node and driver through
``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` (``env``).

Ray starts its worker processes at niceness 15 (``RAY_worker_niceness``), below everything else on
the machine: right for batch work, wrong for a call that must keep real time on a node it shares.
``worker_niceness`` sets it for the cluster's nodes (0: as any other process).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from loguru import logger

from presence.framework.errors import PresenceError

NODE_IP = "127.0.0.2"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# A throwaway cluster's head takes 12-16 s to stop gracefully (as `ray stop` allows it); its
# folder is deleted right after, so nothing is lost by killing it sooner.
STOP_GRACE_S = 3.0


class ClusterError(PresenceError):
    """The local Ray cluster could not be started (``ray`` missing, a node did not come up)."""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class LocalNode:
    """One ``ray start --block`` process and the cores it runs on."""

    process: subprocess.Popen
    cores: set[int] | None
    log: Path

    @property
    def alive(self) -> bool:
        """Whether its ``ray start`` process still runs."""
        return self.process.poll() is None


@dataclass
class LocalRayCluster:
    """K local Ray nodes (see the module docstring); a context manager that always stops them.

    Args:
        nodes: How many nodes (the first is the head).
        num_cpus: Logical CPUs each node offers Ray's scheduler.
        pin: Run each node on its own share of this machine's cores.
        extra_env: More environment for the nodes (e.g. ``PYTHONPATH`` for their workers).
        worker_niceness: Niceness of the nodes' worker processes (Ray's default is 15).
    """

    nodes: int = 2
    num_cpus: float = 1
    pin: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    worker_niceness: int = 0
    address: str = ""
    env: dict[str, str] = field(default_factory=dict)
    started: list[LocalNode] = field(default_factory=list)
    _temp: Path | None = None

    def __enter__(self) -> LocalRayCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _cores(self, index: int) -> set[int] | None:
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not self.pin or len(available) < 2:
            return None
        share = max(1, len(available) // self.nodes)
        first = (index * share) % len(available)
        return set(available[first : first + share])

    def start(self) -> None:
        """Start the nodes and wait until Ray sees all of them alive.

        Raises:
            ClusterError: ``ray`` is not installed, or a node did not join within 60 s.
        """
        ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
        if not Path(ray_cli).exists():
            raise ClusterError("--nodes needs Ray: pip install 'presence[ray]'")
        # A short folder: Ray's socket paths live under it and must stay under 108 bytes.
        self._temp = Path(tempfile.mkdtemp(prefix="prs-ray-", dir="/tmp"))
        port = _free_port(NODE_IP)
        self.address = f"{NODE_IP}:{port}"
        self.env = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        common = [f"--num-cpus={self.num_cpus:g}", f"--node-ip-address={NODE_IP}",
                  f"--temp-dir={self._temp}", "--disable-usage-stats", "--block"]  # fmt: skip
        try:
            for index in range(self.nodes):
                if index == 0:
                    args = ["--head", f"--port={port}", "--include-dashboard=false"]
                else:
                    args = [f"--address={self.address}"]
                self._start_node(index, [ray_cli, "start", *args, *common])
                self._wait_for_nodes(index + 1)
        except BaseException:
            self.stop()
            raise
        logger.info(f"local Ray cluster of {self.nodes} node(s) at {self.address}")

    def _start_node(self, index: int, command: list[str]) -> None:
        cores = self._cores(index)
        log = self._temp / f"node{index}.log"
        env = {**os.environ, **self.extra_env, **self.env,
               "RAY_worker_niceness": str(self.worker_niceness)}  # fmt: skip
        with log.open("w") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # the node and its children: one process group
                preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
            )
        self.started.append(LocalNode(process, cores, log))

    def _wait_for_nodes(self, count: int) -> None:
        """Wait until ``ray status`` shows ``count`` nodes (via the node list in the GCS)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        probe = [sys.executable, "-c", _PROBE, self.address]
        env = {**os.environ, **self.env}
        while time.monotonic() < deadline:
            for node in self.started:
                if not node.alive:
                    raise ClusterError(
                        f"a Ray node exited while starting: {node.log.read_text()[-2000:]}"
                    )
            result = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=60)
            if result.returncode == 0 and int(result.stdout.strip() or 0) >= count:
                return
            time.sleep(0.5)
        raise ClusterError(f"the local Ray cluster did not reach {count} node(s) in time")

    def kill_node(self, index: int) -> None:
        """SIGKILL node ``index`` and every process it started, as when its machine dies."""
        node = self.started[index]
        for process in _tree(node.process.pid):
            with contextlib.suppress(psutil.Error):
                process.kill()
        node.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop every node this cluster started, and the workers they started; idempotent.

        Each ``ray start`` and every process it started gets SIGTERM (Ray workers run in process
        groups of their own, so the group's signal misses them); whatever of the tree is still
        there ``STOP_GRACE_S`` later gets SIGKILL.
        """
        trees = {id(node): _tree(node.process.pid) for node in self.started}
        for node in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGTERM)
            for process in trees[id(node)]:
                with contextlib.suppress(psutil.Error):
                    process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for node in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            gone, alive = psutil.wait_procs(
                trees[id(node)], timeout=max(0.1, deadline - time.monotonic())
            )
            for process in alive:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(alive, timeout=5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.kill()
                node.process.wait(timeout=5)
        self.started.clear()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None


def _tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


# Counts the cluster's live nodes in a throwaway driver (the caller's process stays Ray-free).
_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
print(sum(n["Alive"] for n in ray.nodes()))
"""
