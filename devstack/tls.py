"""A local certificate authority and a server certificate for the broker's TLS listener
(`LARM_MQTT_TLS=true` in `make up`). Made once with openssl, kept under the state dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from devstack.procs import installed, run


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def local_ca(directory: Path, *, host: str = "127.0.0.1", days: int = 825) -> TlsFiles:
    """The CA (ca.crt: give it to clients as LARM_MQTT_TLS_CA) and a server key and
    certificate for `host` (localhost and 127.0.0.1 as subject alternative names)."""
    openssl = installed("openssl")
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    if files.ca.exists() and files.cert.exists() and files.key.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, csr = directory / "ca.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(f"subjectAltName = DNS:localhost, IP:{host}, IP:127.0.0.1\n")
    subject = ["-subj", f"/CN={host}"]
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
         "-out", str(files.ca), "-days", str(days), "-subj", "/CN=larmkedja local CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files.key),
         "-out", str(csr), *subject],
        ["x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(files.cert), "-days", str(days), "-extfile", str(ext)],
    ]  # fmt: skip
    # The keys are private from their first byte (no window between writing and chmod).
    old_umask = os.umask(0o077)
    try:
        for argv in steps:
            run([openssl, *argv], what="openssl")
    finally:
        os.umask(old_umask)
    for path in (files.ca, files.cert):
        path.chmod(0o644)
    return files
