"""Run sandbox twins in their own processes: `python -m handoff.connectors.twin_process
salesforce --port 8443 --tls-dir .handoff/tls`, or `TwinProcess` from Python."""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from handoff.connectors.children import dies_with_parent
from handoff.connectors.children import stop as stop_child

# system -> (module:function building the ASGI app, serves TLS?)
TWINS: dict[str, tuple[str, bool]] = {
    "salesforce": ("handoff.connectors.salesforce.twin:create_app", True),
    "netsuite": ("handoff.connectors.netsuite.twin:create_app", False),
    "hubspot": ("handoff.connectors.hubspot.twin:create_app", False),
    "businesscentral": ("handoff.connectors.businesscentral.twin:create_app", False),
    "dynamics": ("handoff.connectors.dynamics.twin:create_app", False),
    "oracle": ("handoff.connectors.oracle.twin:create_app", False),
    "sap": ("handoff.connectors.sap.twin:create_app", False),
    "stripe": ("handoff.connectors.stripe.twin:create_app", False),
}


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway local CA and a server certificate for 127.0.0.1/localhost it signed."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    @classmethod
    def in_dir(cls, directory: Path) -> TlsFiles:
        """Make them once per directory; later calls reuse the files."""
        files = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        if all(p.exists() for p in (files.ca_pem, files.cert_pem, files.key_pem)):
            return files
        import trustme

        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(files.ca_pem))
        server.private_key_pem.write_to_path(str(files.key_pem))
        server.cert_chain_pems[0].write_to_path(str(files.cert_pem))
        for extra in server.cert_chain_pems[1:]:
            with files.cert_pem.open("ab") as fh:
                fh.write(extra.bytes())
        return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_app(system: str) -> Any:
    target, _ = TWINS[system]
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)()


class TwinProcess:
    """One twin in a child process; a context manager that never leaves it running."""

    def __init__(self, system: str, tls_dir: Path, port: int | None = None) -> None:
        if system not in TWINS:
            raise ValueError(f"no sandbox twin for {system!r}; known: {', '.join(TWINS)}")
        self.system = system
        self.port = port or free_port()
        self.tls = TlsFiles.in_dir(tls_dir) if TWINS[system][1] else None
        self.tls_dir = tls_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client needs to trust this twin (its throwaway CA)."""
        return ssl.create_default_context(cafile=str(self.tls.ca_pem)) if self.tls else True

    @property
    def ca_file(self) -> str | None:
        return str(self.tls.ca_pem) if self.tls else None

    def start(self, timeout: float = 20.0) -> TwinProcess:
        cmd = [sys.executable, "-m", "handoff.connectors.twin_process", self.system,
               "--port", str(self.port), "--tls-dir", str(self.tls_dir)]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                        preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"{self.system} twin exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.base_url}/_twin/health", verify=self.verify, timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.system} twin did not answer on port {self.port}")

    def stop(self) -> None:
        stop_child(self.process, timeout=5)
        self.process = None

    def control(self) -> httpx.Client:
        """A client for the twin's /_twin/ control endpoint."""
        return httpx.Client(base_url=self.base_url, verify=self.verify, timeout=10.0)

    def __enter__(self) -> TwinProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(system: str, port: int, tls: TlsFiles | None, host: str = "127.0.0.1") -> None:
    import uvicorn

    options: dict[str, Any] = {"host": host, "port": port, "log_level": "critical",
                               "access_log": False}
    if tls:
        options |= {"ssl_certfile": str(tls.cert_pem), "ssl_keyfile": str(tls.key_pem)}
    uvicorn.run(load_app(system), **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one sandbox twin.")
    parser.add_argument("system", choices=sorted(TWINS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-dir", type=Path, default=Path(".handoff/tls"))
    args = parser.parse_args(argv)
    tls = TlsFiles.in_dir(args.tls_dir) if TWINS[args.system][1] else None
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(args.system, args.port, tls)


if __name__ == "__main__":
    main()
