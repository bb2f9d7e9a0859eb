"""The coordinator's Flower SuperLink, with its control APIs answering this machine only.

Flower 1.42 serves the sites' Fleet API, the Control API (`flwr run`, site registration) and
the Runtime API (its own ServerApp processes) on one HTTPS port, and the open-source SuperLink
does not authenticate Control API callers. Anyone who could reach the port the hospitals dial
could then submit a run, i.e. code that every site executes, or register a key of their own.
So `ichfed coordinator start` runs Flower's own `flower-superlink` with one middleware added:
from other machines only the Fleet API (where each site proves its registered key) and the
health check are served; everything else is refused with 403 unless the connection comes from
this machine. Flower has no setting for this (its extension hooks are reserved for its
enterprise package), hence the wrapper around its app factory.
"""

import ipaddress
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

PUBLIC = ("/v1/fleet/", "/health")  # what the sites use; the Fleet API checks their keys

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def _is_this_machine(scope: Scope) -> bool:
    """A loopback client, or one whose address is the one it reached (a connection between
    two of this machine's own addresses)."""
    client, server = scope.get("client"), scope.get("server")
    if not client:
        return False
    if server is not None and client[0] == server[0]:
        return True
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class LocalControl:
    """ASGI middleware: paths outside `PUBLIC` are served to this machine only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if (scope["type"] == "http" and not scope["path"].startswith(PUBLIC)
                and not _is_this_machine(scope)):
            body = b'{"detail": "the control API answers the coordinator\'s own machine only"}'
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def main() -> None:
    """`flower-superlink` with `LocalControl` around its app (same arguments)."""
    import flwr.superlink.main as superlink
    from flwr.superlink.cli.flower_superlink import flower_superlink

    create_app = superlink.create_app

    def guarded(*args, **kwargs):
        app = create_app(*args, **kwargs)
        app.add_middleware(LocalControl)
        return app

    # flower_superlink imports create_app from this module when it starts serving
    superlink.create_app = guarded
    sys.argv[0] = "flower-superlink"
    flower_superlink()


if __name__ == "__main__":
    main()
