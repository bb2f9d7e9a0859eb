"""The coordinator's SuperLink: Flower's own app, its control APIs closed to other machines;
the server certificate always valid for this machine's own tools."""

import importlib
import ipaddress

import flwr.superlink.main as flower_app
import pytest
from cryptography import x509
from starlette.testclient import TestClient

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


def _post(app, client: tuple[str, int], path: str):
    with TestClient(app, client=client) as http:
        return http.post(path, content=b"\x00", headers={"content-type": "application/protobuf"})


@pytest.mark.parametrize("path", ["/v1/control/start-run", "/v1/control/list-runs",
                                  "/v1/runtime/acquire-task", "/docs"])
def test_another_machine_cannot_reach_the_control_apis(flower, path):
    reply = _post(flower, ("10.20.30.40", 50000), path)
    assert reply.status_code == 403 and REFUSED in reply.text


def test_another_machine_reaches_the_fleet_api_where_flower_checks_the_site(flower):
    reply = _post(flower, ("10.20.30.40", 50000), "/v1/fleet/get-run")
    assert REFUSED not in reply.text  # Flower's own answer, whatever it is
    with TestClient(flower, client=("10.20.30.40", 50000)) as http:
        assert http.get("/health").status_code == 200


@pytest.mark.parametrize("client", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1",
                                    "testserver"])
def test_this_machine_reaches_the_control_api(flower, client):
    # "testserver" is the address the client dialled: a connection between two of this
    # machine's own addresses
    reply = _post(flower, (client, 50000), "/v1/control/list-runs")
    assert REFUSED not in reply.text


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
