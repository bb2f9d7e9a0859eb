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

Two more guards, both ahead of Flower's code:
- Who is calling is the TCP peer, never a header: uvicorn runs with its proxy-header handling
  off (it would otherwise take the client's address from `X-Forwarded-For` when the
  environment says `FORWARDED_ALLOW_IPS='*'`), and a control request that carries a
  forwarding header is refused whatever its peer (it was relayed from somewhere else).
- No request body larger than `MAX_BODY` is read: by its `Content-Length` before a byte of it
  is read, and while it streams when it has none. Flower reads a whole body into memory before
  any key is checked, so without this any caller could grow the coordinator's memory.
"""

import ipaddress
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

PUBLIC = ("/v1/fleet/", "/health")  # what the sites use; the Fleet API checks their keys
# Headers a proxy adds to say whom it relays for (uvicorn honours the first; others may)
FORWARDING = (b"x-forwarded-for", b"forwarded", b"x-real-ip", b"x-forwarded-host")
# The largest request body served. Flower 1.42 never sends a message whole: a message, each of
# its records and each array travel as separate objects, arrays cut into chunks of
# FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE (5 MiB), and a run's app bundle is capped at FAB_MAX_SIZE
# (10 MiB). So the largest legitimate body is about 10 MiB whatever the model (the `paper`
# preset's weights and Adam state are 93 MB in all, pushed 5 MiB at a time;
# tests/federated/test_superlink.py checks this against Flower's own serialisation).
MAX_BODY = 16 * 1024 * 1024

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


def _forwarded(scope: Scope) -> bool:
    return any(name.lower() in FORWARDING for name, _ in scope.get("headers", ()))


async def _refuse(send: Callable, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class LocalControl:
    """ASGI middleware: paths outside `PUBLIC` are served to this machine only, and only to
    requests no proxy relayed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if (scope["type"] == "http" and not scope["path"].startswith(PUBLIC)
                and (_forwarded(scope) or not _is_this_machine(scope))):
            await _refuse(send, 403, "the control API answers the coordinator's own machine "
                                     "only, and no relayed request")
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused with 413 before it is read
    (by its Content-Length) or as soon as it streams past the limit (without one)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.limit:
                await _refuse(send, 413, f"request body over {self.limit} bytes")
                return
        state = {"read": 0, "refused": False}

        async def limited_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request" and not state["refused"]:
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.limit:
                    state["refused"] = True
                    await _refuse(send, 413, f"request body over {self.limit} bytes")
                    return {"type": "http.disconnect"}  # the app stops reading here
            return message

        async def send_unless_refused(message: dict) -> None:
            if not state["refused"]:
                await send(message)

        try:
            await self.app(scope, limited_receive, send_unless_refused)
        except Exception:
            if not state["refused"]:  # the app's own failure; a refused body's is expected
                raise


def without_proxy_headers(run: Callable) -> Callable:
    """`uvicorn.run` that never takes a client's address from its headers."""
    def serve(*args, **kwargs):
        return run(*args, **{**kwargs, "proxy_headers": False})
    return serve


def main() -> None:
    """`flower-superlink` with `LocalControl` and `BodyLimit` around its app (same arguments),
    served by uvicorn with proxy headers ignored."""
    import flwr.superlink.main as superlink
    import uvicorn
    from flwr.superlink.cli.flower_superlink import flower_superlink

    create_app = superlink.create_app

    def guarded(*args, **kwargs):
        app = create_app(*args, **kwargs)
        app.add_middleware(LocalControl)
        app.add_middleware(BodyLimit)  # added last: the outermost, so it runs first
        return app

    # flower_superlink imports create_app from this module and calls uvicorn.run when it
    # starts serving (pinned to flwr 1.42.0; tests/federated/test_superlink.py checks both)
    superlink.create_app = guarded
    uvicorn.run = without_proxy_headers(uvicorn.run)
    sys.argv[0] = "flower-superlink"
    flower_superlink()


if __name__ == "__main__":
    main()
