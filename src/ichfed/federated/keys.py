"""The deployment's keys: a CA and the coordinator's TLS certificate, and each site's EC P-384
key pair for Flower's SuperNode authentication. Made with `cryptography` (already a Flower
dependency), so no openssl or ssh-keygen is needed on a hospital's machine."""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ichfed.errors import IchfedError

CA, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.pem", "server.key"
VALID = datetime.timedelta(days=825)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _alt_names(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


LOCAL = ["127.0.0.1", "localhost"]  # the coordinator's own tools dial it here


def make_certificates(folder: Path, hosts: list[str]) -> Path:
    """ca.crt/ca.key and server.pem/server.key valid for `hosts` (what the sites dial) and for
    this machine's loopback names, where run submission and site registration connect (the
    SuperLink answers them from this machine only: federated/superlink.py)."""
    hosts = list(dict.fromkeys([*hosts, *LOCAL]))
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / CA).exists():
        raise IchfedError(f"{folder}: already holds certificates ({CA}); use another folder")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = (x509.CertificateBuilder().subject_name(_name("ichfed coordinator CA"))
          .issuer_name(_name("ichfed coordinator CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + VALID)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA384()))
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + VALID)
            .add_extension(_alt_names(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA384()))
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    (folder / CA).write_bytes(ca.public_bytes(pem))
    (folder / SERVER_CERT).write_bytes(cert.public_bytes(pem))
    _write_private(folder / CA_KEY, ca_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, plain))
    _write_private(folder / SERVER_KEY, key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, plain))
    return folder


def make_site_key(path: Path) -> tuple[Path, Path]:
    """PATH (private, OpenSSH format, mode 600) and PATH.pub (to give to the coordinator)."""
    public = path.with_name(path.name + ".pub")
    if path.exists() or public.exists():
        raise IchfedError(f"{path}: a key already exists; use another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                     serialization.PublicFormat.OpenSSH) + b"\n")
    return path, public
