"""SCAIP over SIP MESSAGE, driven by sipp (Debian's sip-tester) from scenario files: a
controller logs in with SIP digest (sipp answers the 401 challenge itself), or is plain."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.procs import free_port
from tests.gateway.conftest import GatewayStack
from tests.helpers import wait_until

pytestmark = pytest.mark.integration
SCENARIOS = Path(__file__).parent / "sipp"


@dataclass(frozen=True)
class SippRun:
    returncode: int
    answers: list[tuple[str, str, str]]  # (cid, ref, snu) per 200 OK
    output: str


def sipp(
    gw: GatewayStack,
    tmp_path: Path,
    rows: list[tuple[str, str, str]],
    *,
    scenario: str = "message",
    transport: str = "u1",
) -> SippRun:
    """Run sipp once: one MESSAGE per (cid, mrq body, password) row, in order."""
    binary = shutil.which("sipp")
    assert binary, "sipp is not installed (deploy/local/install.sh installs sip-tester)"
    data = tmp_path / "calls.csv"
    data.write_text("SEQUENTIAL\n" + "".join(f"{cid};{body};{pw};\n" for cid, body, pw in rows))
    log = tmp_path / "sipp.log"
    errors = tmp_path / "sipp-errors.log"
    argv = [
        binary, f"{gw.host}:{gw.port('scaip')}", "-sf", str(SCENARIOS / f"{scenario}.xml"),
        "-inf", str(data), "-m", str(len(rows)), "-l", "1", "-r", "50",
        "-t", transport, "-i", "127.0.0.1", "-p", str(free_port()),
        "-trace_logs", "-log_file", str(log), "-trace_err", "-error_file", str(errors),
        "-timeout", "30s", "-recv_timeout", "5000", "-nostdin",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    text = log.read_text() if log.exists() else ""
    answers = re.findall(r"answer (\S+) ref=(\S*) snu=(\S*)", text)
    err = errors.read_text() if errors.exists() else ""
    return SippRun(returncode=done.returncode, answers=answers, output=done.stdout[-2000:] + err)


def mrq(cid: str, ref: str, mty: str, *, stc: str | None = None, dty: str = "0003") -> str:
    parts = [f"<ref>{ref}</ref>", f"<cid>{cid}</cid>", f"<dty>{dty}</dty>", f"<mty>{mty}</mty>"]
    if stc is not None:
        parts.append(f"<stc>{stc}</stc>")
    parts.append("<crd>gsm:+46700000000</crd>")
    return "<mrq>" + "".join(parts) + "</mrq>"


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_alarm_heartbeat_and_reset_over_udp_and_tcp(
    gw: GatewayStack, tmp_path: Path, transport: str
) -> None:
    pw = str(gw.add("scaip", "26317", "scaip-1")["password"])
    run = sipp(
        gw, tmp_path,
        [
            ("26317", mrq("26317", "00001883", "ME", stc="0010", dty="0003"), pw),
            ("26317", mrq("26317", "00001884", "PI", stc="102", dty="02"), pw),
            ("26317", mrq("26317", "00001885", "ME", stc="0009", dty="0005"), pw),
            ("26317", mrq("26317", "00001886", "RE", dty="0003"), pw),
        ],
        transport=transport,
    )  # fmt: skip
    assert run.returncode == 0, run.output
    assert [(ref, snu) for _, ref, snu in run.answers] == [
        ("00001883", "0"), ("00001884", "0"), ("00001885", "0"), ("00001886", "0"),
    ]  # fmt: skip
    gw.wait_events("scaip-1", 4)
    assert gw.events("scaip-1", "alarm.button") == 1
    assert gw.events("scaip-1", "alarm.fall") == 1
    assert gw.events("scaip-1", "heartbeat") == 1
    assert gw.events("scaip-1", "alarm.cancel") == 1
    wait_until(lambda: gw.open_alarms("scaip-1") == 2, timeout=10, what="two queue entries")


def test_a_repeated_message_is_one_event_and_one_queue_entry(
    gw: GatewayStack, tmp_path: Path
) -> None:
    pw = str(gw.add("scaip", "777", "scaip-2")["password"])
    body = mrq("777", "A1", "ME", stc="10")
    run = sipp(gw, tmp_path, [("777", body, pw), ("777", body, pw), ("777", body, pw)])
    assert run.returncode == 0, run.output
    assert [snu for *_, snu in run.answers] == ["0", "0", "0"]
    gw.wait_events("scaip-2", 1)
    wait_until(lambda: gw.open_alarms("scaip-2") == 1, timeout=10, what="one queue entry")
    assert gw.events("scaip-2") == 1  # a retry of the same ref and content is the same event


def test_malformed_messages_get_their_snu(gw: GatewayStack, tmp_path: Path) -> None:
    """A malformed <mrq> is answered with its snu at once, without a challenge: it is refused
    whoever sent it, and the answer says nothing about the controller."""
    pw = str(gw.add("scaip", "555", "scaip-3")["password"])
    run = sipp(
        gw, tmp_path,
        [
            ("555", "<mrq><ref>B1</ref><cid>555</cid><mty>ME</mty></mrq>", pw),  # no dty
            ("555", "<mrq><ref>B2</ref><cid>555</cid><dty>3</dty><mty>XX</mty></mrq>", pw),
            ("555", "<mrq><ref>B3</ref><cid>555</cid><dty>3</dty>", pw),  # not well-formed
            ("555", "<alarm>hello</alarm>", pw),
        ],
        scenario="plain",
    )  # fmt: skip
    assert run.returncode == 0, run.output
    assert [(ref, snu) for _, ref, snu in run.answers] == [
        ("B1", "7"), ("B2", "3"), ("B3", "2"), ("0", "2"),
    ]  # fmt: skip
    wait_until(lambda: gw.dead_letters("malformed") == 4, timeout=5, what="dead letters")
    assert gw.events("scaip-3") == 0


def test_an_unknown_controller_is_challenged_again_and_kept_as_a_dead_letter(
    gw: GatewayStack, tmp_path: Path
) -> None:
    row = ("999", mrq("999", "C1", "ME", stc="10"), "not-a-password-1")
    run = sipp(gw, tmp_path, [row], scenario="refused")
    assert run.returncode == 0, run.output
    wait_until(lambda: gw.dead_letters("unknown_sender") == 1, timeout=5, what="dead letter")
    head = gw.settings.database_url
    from tests.helpers import scalar

    stored = bytes(scalar(head, "SELECT payload_head FROM dead_letters LIMIT 1"))
    assert b"+46700000000" not in stored  # the caller's number is not kept
    assert gw.result_count("scaip", "unknown_sender") == 1


def test_a_revoked_controller_is_refused_within_the_cache_time(
    gw: GatewayStack, tmp_path: Path
) -> None:
    from gateway import admin

    pw = str(gw.add("scaip", "4242", "scaip-4")["password"])
    assert sipp(gw, tmp_path, [("4242", mrq("4242", "D1", "PI"), pw)]).returncode == 0
    admin.revoke(gw.settings, protocol="scaip", sender_id="4242")
    wait_until(
        lambda: sipp(gw, tmp_path, [("4242", mrq("4242", "D2", "PI"), pw)], scenario="refused")
        .returncode == 0,
        timeout=gw.settings.gateway_registry_cache_s + 5, what="refusal after revoke",
    )  # fmt: skip


def test_a_plain_controller_is_taken_by_its_cid_alone(gw: GatewayStack, tmp_path: Path) -> None:
    """`sender add --plain`: the administrator's explicit choice for a device without SIP
    digest; it is answered at once, without a challenge."""
    gw.add("scaip", "31337", "scaip-5", plain=True)
    run = sipp(gw, tmp_path, [("31337", mrq("31337", "E1", "ME", stc="10"), "")], scenario="plain")
    assert run.returncode == 0, run.output
    assert [snu for *_, snu in run.answers] == ["0"]
    gw.wait_events("scaip-5", 1)
    assert gw.result_count("scaip", "challenged") == 0
