"""`hpo dashboard`: optuna-dashboard for a store, on this machine only unless asked."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import signal
import sys

from hpo import store
from hpo.artifacts import artifact_store, artifacts_dir
from hpo.commands import add_artifacts, add_storage
from hpo.errors import HpoError

HELP = "serve optuna-dashboard for a store on http://127.0.0.1:8080"
DESCRIPTION = HELP + "; Ctrl-C stops it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    add_storage(p)
    add_artifacts(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def main(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise HpoError(f"--port must be between 1 and 65535, got {args.port}")
    url = store.parse(store.resolve_url(args.storage))
    storage = store.open_storage(url, create=False)
    directory = artifacts_dir(url, args.artifacts)
    artifacts = artifact_store(directory)
    if not is_loopback(args.host):
        print(f"hpo: warning: --host {args.host} makes the dashboard reachable from other "
              "machines; it has no login, and anyone who reaches it can edit and delete studies",
              file=sys.stderr)
    _check_address(args.host, args.port)  # before any line says it listens there
    from optuna_dashboard import run_server

    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"hpo: dashboard for {store.mask(url)} at http://{shown}:{args.port}/dashboard/ "
          f"(artifacts: {directory}); Ctrl-C stops it", file=sys.stderr, flush=True)
    # A shell starting us in the background ignores SIGINT for us (and Python then installs no
    # Ctrl-C handler); a service manager stops us with SIGTERM. Both must stop the server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        run_server(storage, host=args.host, port=args.port, artifact_store=artifacts)
    except OSError as exc:
        raise _address_error(exc, args.host, args.port) from None
    except KeyboardInterrupt:
        pass  # bottle swallows Ctrl-C inside the server; this covers the moments around it
    print("hpo: dashboard stopped", file=sys.stderr)
    return 0


def _address_error(exc: OSError, host: str, port: int) -> HpoError:
    if exc.errno == errno.EADDRINUSE:
        return HpoError(f"port {port} on {host} is in use; pick another with --port N")
    return HpoError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; check --host and "
                    "--port")


def _check_address(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go: a busy port or a host that is not this machine's
    is one line before the dashboard's own "Listening on" line, not after it."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), port))
    except socket.gaierror as exc:
        raise HpoError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; check --host "
                       "and --port") from None
    except OSError as exc:
        raise _address_error(exc, host, port) from None
