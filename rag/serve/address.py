"""Where a server listens: whether its port is free (checked before the slow start, so a busy
port is a clear error at once, not a Gradio traceback after the models load), and the URL a
person opens."""

from __future__ import annotations

import errno
import socket

from rag.errors import RagError

WILDCARDS = frozenset({"0.0.0.0", "::", ""})
# Gradio's start_server binds 127.0.0.1:port before it binds the host asked for (gradio 6.31,
# gradio/http_server.py), so a port taken on loopback fails even when another host is given.
GRADIO_PROBE_HOST = "127.0.0.1"


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _bind(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As uvicorn binds: SO_REUSEADDR, so a port left in TIME_WAIT by a closed server counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))


def check_port(host: str, port: int, env: str = "RAG_PORT") -> None:
    """Raise a RagError naming the port and the fix when a server could not listen on
    ``host``:``port`` (taken, privileged, or an address this machine does not have). ``env`` is
    the variable that sets the port, for the message."""
    host = _bare(host)
    hosts = [host] if host == GRADIO_PROBE_HOST else [host, GRADIO_PROBE_HOST]
    for where in hosts:
        try:
            _bind(where, port)
        except socket.gaierror as e:
            raise RagError(f"cannot listen on {host!r}: {e.strerror}. Give an address of this machine with "
                           "--host (or RAG_HOST), e.g. 127.0.0.1 or 0.0.0.0") from None
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise RagError(f"port {port} is already in use on {where} (another `rag ui` still running?). "
                               f"Choose another port: --port N, or {env}=N") from None
            if e.errno == errno.EACCES:
                raise RagError(f"port {port} needs administrator rights on this system. Choose a port above 1023: "
                               f"--port N, or {env}=N") from None
            raise RagError(f"cannot listen on {host} port {port}: {e.strerror or e}. Give another address with "
                           f"--host (or RAG_HOST), or another port with --port N (or {env}=N)") from None


def browser_url(host: str, port: int, path: str = "") -> str:
    """The address to open: a wildcard host is reached as localhost, an IPv6 one in brackets."""
    host = _bare(host)
    if host in WILDCARDS:
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"
