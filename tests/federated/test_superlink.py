"""The coordinator's SuperLink: Flower's own app, its control APIs closed to other machines;
the server certificate always valid for this machine's own tools."""

import asyncio
import importlib
import inspect
import ipaddress
from importlib.metadata import version

import flwr.superlink.main as flower_app
import httpx
import pytest
import uvicorn
from cryptography import x509
from flwr.app import ArrayRecord, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ichfed.federated import superlink
from ichfed.federated.keys import SERVER_CERT, make_certificates
from ichfed.federated.superlink import MAX_BODY, BodyLimit, LocalControl
from ichfed.model.config import preset
from ichfed.model.network import build_network

REFUSED = "the control API answers the coordinator's own machine only"


@pytest.fixture(scope="module")
def flower():
    """Flower's SuperLink app (in-memory state) with the middleware, as `coordinator start`
    serves it."""
    app = flower_app.create_app()
    app.add_middleware(LocalControl)
    return app


def _call(app, client: str, path: str, method: str = "POST", headers: dict | None = None,
          content=b"\x00") -> httpx.Response:
    """One request from `client` to the app, which it reaches as https://coordinator."""
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 50000),
                                        raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://coordinator") as http:
            return await http.request(method, path, content=content,
                                      headers={"content-type": "application/protobuf",
                                               **(headers or {})})
    return asyncio.run(call())


def _flowers_own(reply: httpx.Response) -> bool:
    """Flower's answer (here: its error for the one-byte body), not the middleware's."""
    return reply.status_code != 403 and "code" in reply.json()


@pytest.mark.parametrize("path", ["/v1/control/start-run", "/v1/control/list-runs",
                                  "/v1/runtime/acquire-task", "/docs"])
def test_another_machine_cannot_reach_the_control_apis(flower, path):
    reply = _call(flower, "10.20.30.40", path)
    assert reply.status_code == 403 and REFUSED in reply.text


def test_another_machine_reaches_the_fleet_api_where_flower_checks_the_site(flower):
    reply = _call(flower, "10.20.30.40", "/v1/fleet/get-run")
    assert _flowers_own(reply)
    assert _call(flower, "10.20.30.40", "/health", "GET").status_code == 200


@pytest.mark.parametrize("client", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1",
                                    "coordinator"])
def test_this_machine_reaches_the_control_api(flower, client):
    # "coordinator" is the address the client dialled: a connection between two of this
    # machine's own addresses
    assert _flowers_own(_call(flower, client, "/v1/control/list-runs"))


@pytest.mark.parametrize("header", [{"x-forwarded-for": "127.0.0.1"},
                                    {"forwarded": "for=127.0.0.1"}, {"x-real-ip": "127.0.0.1"}])
def test_a_forged_proxy_header_from_another_machine_is_refused(flower, monkeypatch, header):
    """As uvicorn composes it when the environment trusts every proxy: its proxy-header
    middleware first rewrites the client from X-Forwarded-For (the coordinator turns it off,
    and the guard refuses a relayed control request whatever its peer)."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    behind_proxy = ProxyHeadersMiddleware(flower, trusted_hosts="*")
    reply = _call(behind_proxy, "10.20.30.40", "/v1/control/list-runs", headers=header)
    assert reply.status_code == 403 and REFUSED in reply.text


def test_the_coordinator_serves_flowers_app_guarded_without_proxy_headers(monkeypatch):
    served, runs = [], []
    monkeypatch.setattr(flower_app, "create_app", flower_app.create_app)  # restored after
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: runs.append(k))  # restored after
    # the module, not the package's function of the same name
    cli = importlib.import_module("flwr.superlink.cli.flower_superlink")

    def flower_superlink():  # what Flower's does, in short
        served.append(flower_app.create_app())
        cli.uvicorn.run(app=served[0], host="0.0.0.0", port=9092)

    monkeypatch.setattr(cli, "flower_superlink", flower_superlink)
    superlink.main()
    assert [m.cls for m in served[0].user_middleware][:2] == [BodyLimit, LocalControl]
    assert runs == [{"app": served[0], "host": "0.0.0.0", "port": 9092, "proxy_headers": False}]


def test_flower_still_serves_the_way_the_guards_assume():
    """The guards wrap Flower 1.42.0's app factory and its uvicorn.run call: if either moves,
    this fails before a coordinator runs unguarded."""
    assert version("flwr") == "1.42.0", "the SuperLink guards are written for flwr 1.42.0"
    cli = importlib.import_module("flwr.superlink.cli.flower_superlink")
    source = inspect.getsource(cli._run_superlink_http_api)
    assert "from flwr.superlink.main import" in source and "create_app" in source
    assert "uvicorn.run(" in source and "proxy_headers" not in source


class _Inner:
    """An app that reads the whole body, as Flower's does, and says how much it read."""

    def __init__(self) -> None:
        self.read = 0

    async def __call__(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RuntimeError("client went away")  # as Starlette's ClientDisconnect
            self.read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_an_oversized_body_is_refused_by_its_length_before_it_is_read():
    inner = _Inner()
    reply = _call(BodyLimit(inner, limit=1000), "10.20.30.40", "/v1/fleet/push-object",
                  content=b"\x00" * 5000)
    assert reply.status_code == 413 and inner.read == 0
    assert _call(BodyLimit(_Inner(), limit=1000), "10.20.30.40", "/v1/fleet/push-object",
                 content=b"\x00" * 1000).status_code == 200
    assert _call(BodyLimit(_Inner(), limit=1000), "10.20.30.40", "/v1/fleet/push-object",
                 headers={"content-length": "12x"}).status_code == 400


def test_an_oversized_body_without_a_length_is_refused_while_it_streams():
    inner, sent = _Inner(), []

    async def chunks():
        for _ in range(100):
            sent.append(1)
            yield b"\x00" * 400

    reply = _call(BodyLimit(inner, limit=1000), "10.20.30.40", "/v1/fleet/push-object",
                  content=chunks())
    assert reply.status_code == 413
    assert inner.read <= 1000 and len(sent) < 100  # the rest was never read


def test_the_largest_legitimate_message_part_fits_the_limit():
    """The `paper` preset's weights with Adam's state (cwt --carry-optimizer), as Flower cuts
    a message's content into the objects it pushes one request each (the message object
    itself holds only their ids)."""
    net = build_network(preset("paper")[0])
    weights = {k: v.detach() for k, v in net.state_dict().items()}
    content = RecordDict({"arrays": ArrayRecord(weights),
                          "optimizer": ArrayRecord({f"{k}.{m}": v for k, v in weights.items()
                                                    for m in ("exp_avg", "exp_avg_sq")})})
    total = sum(v.numel() * v.element_size() for v in weights.values()) * 3
    parts = [len(obj.deflate()) for obj in get_all_nested_objects(content).values()]
    assert total > 90e6 and 3 * max(parts) < MAX_BODY  # room for three times the largest


def test_the_certificate_holds_this_machines_names_beside_the_sites_address(tmp_path):
    make_certificates(tmp_path / "coord", ["coordinator.example.org", "10.0.0.5"])
    cert = x509.load_pem_x509_certificate((tmp_path / "coord" / SERVER_CERT).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["coordinator.example.org", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"),
                                                         ipaddress.ip_address("127.0.0.1")]
