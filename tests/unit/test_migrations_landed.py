"""A migration that has landed is never edited: a database migrated with it keeps what it did,
so a change made to its file would reach new databases only and the two would drift apart. A
change is a new numbered migration. The digests are of the files as they landed; a migration
is added here when it lands."""

from __future__ import annotations

import hashlib

from larmkedja.db import migrations

LANDED = {
    1: "b7b6119373a0850449b06181ae3cfc0705771ee5834b977c6bc39a47f276942e",
    2: "e0afe24340b0a8fd40ba627974496f4d9004a8f7e4e896c73f0c0d9994bad208",
    3: "7f29d36f43c08475fc8517e3b2fd88e89f0385b0dedb33680c5152924ee9b4b3",
    4: "276c2e843d30c22f3d89d211638e2e7e01a6482d49d8d43645b2a4b4fdfc858b",
    5: "68d0fac5fef747675e04eff17c055a5e9706ff848090738cfa88faada148200e",
    6: "c76da10397806b1ad11d11f9a6cac9d449880990d56503253db761d7d3a042f0",
    7: "d2afda1b38711c797e4b7761107ea9d9a90ed4506db8270ae5cb3fba430768cd",
    9: "f930f9ac2f77b25985fe598742d57d9ac380edbeb27ec050a2f8c9d4aa8a0c92",
    10: "9460fedc5ffde565a908ca61173d358da5a823a31098d9def5878611c1d5cbb1",
    11: "f9a6c199baf1687c479e1fbf83460bce98b0d565ccc46ecc9ec49d68bed9ab54",
    12: "b08c370e3903034b6a0e7f3f8cb7b622b291f3edb8bfab466f348adce186fa08",
    13: "8cc75120b3c7d0040dd63eb57e4710fc9bef49d3b0d04922550d822647330a6d",
    14: "69ce0d200a6d0ab65304f14aa2b69923ac63bad5bd3737ccedb07106c4bfa19a",
    15: "16fdc7b1a1ce1231125f073c85770d374ea6ef015da310ab49bb5808cade0ce5",
    16: "c2731e403ea64b0475a31a2bc7bc7620519d825c5ecd99e0436961fc390e278f",
    18: "d63283920a63d778484e44a1c1f5504bf6ec86d6a08abc43d3a0dcdcf8d0c384",
}


def test_no_landed_migration_was_edited() -> None:
    found = {m.version: hashlib.sha256(m.sql.encode()).hexdigest() for m in migrations()}
    edited = sorted(v for v, digest in LANDED.items() if found.get(v) != digest)
    assert not edited, f"landed migrations edited (write a new one instead): {edited}"
