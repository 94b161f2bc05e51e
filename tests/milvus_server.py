"""A real Milvus standalone server for the tests and bench/milvus_scale.py, on 127.0.0.1 only.

It runs the Milvus 2.3.5 standalone build of the ``milvus`` package (the only Milvus server on the
package index: one binary with embedded etcd, RocksMQ as its write-ahead log and local disk as
object storage). Its defaults would advertise the machine's first network address and take fixed
ports (etcd 2379/2380, gRPC 19530, ...), so every component is told to use 127.0.0.1, every port
is a free one picked by the kernel, and data and logs live in ``data_dir``: two servers (two
pytest-xdist workers) run side by side.

Usage::

    server = LocalMilvus(tmp_path / "milvus").start()   # ~8 s
    index = MilvusTorusIndex(8, 4, uri=server.uri)
    server.kill(); server.start()      # SIGKILL, then a restart on the same data and ports
    server.stop()
"""

import fcntl
import os
import platform
import signal
import socket
import subprocess
import time
from pathlib import Path

# Every component that registers an address for the others (default: the first non-loopback one).
COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
PORT_KEYS = (
    "proxy_port",
    "proxy_internal_port",
    "etcd_port",
    "root_coord_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)
ETCD_EMBED = "  use:\n    embed: true"
# After a SIGKILL the dead process's sessions live on in etcd until their lease ends (30 s by
# default), and the restarted server waits for them before it serves a load: 10 s keeps restarts
# short without risking a live session's expiry on a busy machine.
SESSION_TTL = 10


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports the kernel reports free (held together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def link_binaries(data_dir: Path) -> None:
    """Unpack the server's binaries (~250 MB, ~10 s) once per machine into the package's own
    default folder (~/.milvus.io/milvus-server/<version>/bin) and link ``data_dir/bin`` to them;
    if that fails, the server unpacks them into ``data_dir`` itself when it starts."""
    try:
        import milvus

        cache = Path(milvus.MilvusServerConfig.get_default_data_dir())
        if not cache.is_absolute():  # no $HOME: "${HOME}/..." would land in the working directory
            return
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".unpack.lock", "w") as lock:  # xdist workers unpack one at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            milvus._initialize_data_files(str(cache))  # skips files whose checksum matches
        (data_dir / "bin").symlink_to(cache / "bin", target_is_directory=True)
    except (OSError, AttributeError):
        pass


def server_unavailable_reason() -> str | None:
    """Why this machine cannot run the server (None: it can)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return (
            f"the milvus package ships a Linux x86_64 server only (this is "
            f"{platform.system()} {platform.machine()})"
        )
    try:
        import milvus  # noqa: F401
    except ImportError as e:
        return (
            f"the milvus package (server) is not installed: "
            f"pip install 'torus-plugins[milvus]' ({e})"
        )
    return None


class LocalMilvus:
    """One Milvus standalone server process on loopback, its data in ``data_dir`` (module doc)."""

    def __init__(self, data_dir, start_timeout: float = 90.0):
        from milvus import MilvusServer, MilvusServerConfig

        class LoopbackConfig(MilvusServerConfig):
            def try_bind_port(self, port):
                # The package probes each port by binding it; after a SIGKILL the old connections
                # sit in TIME_WAIT, which a plain bind refuses but the restarted server accepts.
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                    sock.listen()
                    return sock
                except OSError:
                    sock.close()
                    return None

        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "bin").exists():
            link_binaries(self.data_dir)
        self.start_timeout = float(start_timeout)
        *ports, etcd_peer, web = free_ports(len(PORT_KEYS) + 2)
        port = dict(zip(PORT_KEYS, ports))
        etcd_yaml = self.data_dir / "etcd-embed.yaml"
        client_url = f"http://127.0.0.1:{port['etcd_port']}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        etcd_yaml.write_text(  # the embedded etcd would listen on localhost:2379 and :2380
            f"name: default\nlisten-client-urls: {client_url}\n"
            f"advertise-client-urls: {client_url}\nlisten-peer-urls: {peer_url}\n"
            f"initial-advertise-peer-urls: {peer_url}\ninitial-cluster: default={peer_url}\n"
        )
        base = MilvusServerConfig()  # the package's template, plus the embedded etcd's config file
        if ETCD_EMBED not in base.template_text:
            raise RuntimeError("the milvus package's config template has no embedded etcd section")
        template = self.data_dir / "milvus.yaml.template"
        template.write_text(
            base.template_text.replace(
                ETCD_EMBED, f"{ETCD_EMBED}\n  config:\n    path: {etcd_yaml}", 1
            )
        )
        config = LoopbackConfig(template=str(template), data_dir=str(self.data_dir), **port)
        config.glog_conf_file = base.glog_conf_file
        for component in COMPONENTS:
            config.set(f"{component}.ip", "127.0.0.1")
        config.set("common.session.ttl", SESSION_TTL)
        self.port = port["proxy_port"]
        self.server = MilvusServer(config, wait_for_started=False)
        self.server.webservice_port = web
        self.started_in = float("nan")

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self.server.server_proc
        return proc.pid if proc is not None else None

    def start(self) -> "LocalMilvus":
        """Start the server and wait until its health check answers (RuntimeError after
        start_timeout, with the tail of its log)."""
        t0 = time.monotonic()
        self.server.start()
        try:
            self.server.wait_started(timeout=int(self.start_timeout * 1000))
        except (TimeoutError, RuntimeError) as e:
            log = self.data_dir / "logs" / "milvus-stderr.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.stop()
            raise RuntimeError(
                f"Milvus server did not start within {self.start_timeout:.0f} s "
                f"({e}); stderr tail:\n{tail}"
            ) from None
        self.started_in = time.monotonic() - t0
        return self

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no flush) and wait for it to be gone."""
        self._end(signal.SIGKILL, 0)

    def stop(self) -> None:
        """Stop the server: SIGTERM, and SIGKILL if it has not exited within 10 s."""
        self._end(signal.SIGTERM, 10)

    def _end(self, sig, grace: float) -> None:
        proc = self.server.server_proc
        if proc is not None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(timeout=grace or 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=60)
            self.server.server_proc = None
        self.server.stop()  # closes its log files
