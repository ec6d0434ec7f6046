"""What every process adds to its database URL (larmkedja/db_connect.py)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from larmkedja.db_connect import client_conninfo


def test_the_client_defaults_are_added_to_a_multi_host_url() -> None:
    url = "postgresql://u:p@127.0.0.1:5001,127.0.0.1:5002/db?target_session_attrs=read-write"
    params = conninfo_to_dict(client_conninfo(url))
    assert params["host"] == "127.0.0.1,127.0.0.1"
    assert params["port"] == "5001,5002"
    assert params["target_session_attrs"] == "read-write"
    assert params["connect_timeout"] == "3"
    assert params["keepalives"] == "1"
    assert params["tcp_user_timeout"] == "10000"
    assert "client_connection_check_interval=2000" in str(params["options"])
    assert "jit=off" in str(params["options"])


def test_what_the_url_sets_itself_is_kept() -> None:
    url = "postgresql://u@h/db?connect_timeout=9&keepalives_idle=30&options=-c%20work_mem%3D8MB"
    params = conninfo_to_dict(client_conninfo(url))
    assert params["connect_timeout"] == "9"
    assert params["keepalives_idle"] == "30"
    assert str(params["options"]).startswith("-c work_mem=8MB -c client_connection_check")
    assert conninfo_to_dict(client_conninfo(client_conninfo(url))) == params
