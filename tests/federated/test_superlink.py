"""The coordinator's SuperLink: Flower's own app, its control APIs closed to other machines;
the server certificate always valid for this machine's own tools."""

import asyncio
import importlib
import ipaddress

import flwr.superlink.main as flower_app
import httpx
import pytest
from cryptography import x509

from ichfed.federated import superlink
from ichfed.federated.keys import SERVER_CERT, make_certificates
from ichfed.federated.superlink import LocalControl

REFUSED = "the control API answers the coordinator's own machine only"


@pytest.fixture(scope="module")
def flower():
    """Flower's SuperLink app (in-memory state) with the middleware, as `coordinator start`
    serves it."""
    app = flower_app.create_app()
    app.add_middleware(LocalControl)
    return app


def _call(app, client: str, path: str, method: str = "POST") -> httpx.Response:
    """One request from `client` to the app, which it reaches as https://coordinator."""
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 50000),
                                        raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://coordinator") as http:
            return await http.request(method, path, content=b"\x00",
                                      headers={"content-type": "application/protobuf"})
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


def test_the_coordinator_serves_flowers_app_with_the_middleware(monkeypatch):
    served = []
    monkeypatch.setattr(flower_app, "create_app", flower_app.create_app)  # restored after
    # the module, not the package's function of the same name
    cli = importlib.import_module("flwr.superlink.cli.flower_superlink")
    monkeypatch.setattr(cli, "flower_superlink", lambda: served.append(flower_app.create_app()))
    superlink.main()
    assert [m.cls for m in served[0].user_middleware][0] is LocalControl


def test_the_certificate_holds_this_machines_names_beside_the_sites_address(tmp_path):
    make_certificates(tmp_path / "coord", ["coordinator.example.org", "10.0.0.5"])
    cert = x509.load_pem_x509_certificate((tmp_path / "coord" / SERVER_CERT).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["coordinator.example.org", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"),
                                                         ipaddress.ip_address("127.0.0.1")]
