"""One truth for the alarm state machine: the same random sequences of presses, resets at the
device, answers, escalations, resolves and link faults go to the pure machine
(`alarms.queue.lifecycle`) and to the real database (ingest's `AlarmProcessor` in an ingest
transaction, the API's `queries_psycopg.act`), and every alarm's state is compared after every
step. What runs is SQL; this test fails the day the SQL and the pure table part ways."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from alarms.people.audit_psycopg import Actor
from alarms.queue import queries_psycopg as q
from alarms.queue.lifecycle import (
    ALLOWED_FROM,
    Action,
    Alarm,
    AlarmState,
    TransitionError,
    apply,
    auto_resolve,
    fold_press,
    mark_reset,
    raise_alarm,
)
from alarms.queue.processor_psycopg import AlarmProcessor
from ingest.store_psycopg import EventStore
from larmkedja.events import Kind, ReceivedEvent
from tests.helpers import make_event, settings_for

pytestmark = pytest.mark.integration

PRESSES = [Kind.ALARM_BUTTON, Kind.ALARM_FALL, Kind.TAMPER, Kind.LINK_LOST]


@dataclass
class Tracked:
    """One alarm in both worlds: the pure model and its row's id."""

    model: Alarm
    alarm_id: uuid.UUID
    device_id: str


def _machine(database_url: str) -> type[RuleBasedStateMachine]:
    s = settings_for(database_url, "127.0.0.1", 1)

    class SameMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.run = uuid.uuid4().hex[:6]
            self.store = EventStore(conninfo=database_url, processors=[AlarmProcessor(settings=s)])
            self.loop = asyncio.new_event_loop()
            self.aconn = self.loop.run_until_complete(
                psycopg.AsyncConnection.connect(database_url, autocommit=True)
            )
            self.alarms: list[Tracked] = []

        def teardown(self) -> None:
            self.loop.run_until_complete(self.aconn.close())
            self.loop.close()
            self.store.close()

        def _device(self, n: int) -> str:
            return f"m-{self.run}-{n}"

        def _store(self, device_id: str, kind: Kind) -> datetime:
            now = datetime.now(UTC)
            event = make_event(device_id, kind)
            self.store.write([ReceivedEvent(site="machine", event=event, received_at=now)], [])
            return now

        def _open(self, device_id: str, kind: str) -> Tracked | None:
            return next(
                (
                    t
                    for t in self.alarms
                    if t.device_id == device_id and t.model.kind == kind and t.model.is_open
                ),
                None,
            )

        @rule(device=st.integers(0, 2), kind=st.sampled_from(PRESSES))
        def press(self, device: int, kind: Kind) -> None:
            device_id = self._device(device)
            at = self._store(device_id, kind)
            tracked = self._open(device_id, kind.value)
            if tracked is not None:
                tracked.model = fold_press(tracked.model, received_at=at)
                return
            with psycopg.connect(database_url) as conn:
                row = conn.execute(
                    "SELECT alarm_id FROM alarms WHERE device_id = %s AND kind = %s"
                    " AND state <> 'resolved'",
                    (device_id, kind.value),
                ).fetchone()
            assert row is not None, "a press raised no alarm"
            model = raise_alarm(kind=kind.value, received_at=at)
            self.alarms.append(Tracked(model=model, alarm_id=row[0], device_id=device_id))

        @rule(device=st.integers(0, 2))
        def reset_at_device(self, device: int) -> None:
            device_id = self._device(device)
            at = self._store(device_id, Kind.ALARM_CANCEL)
            for t in self.alarms:
                if t.device_id == device_id and t.model.kind.startswith("alarm."):
                    t.model = mark_reset(t.model, received_at=at)

        @rule(device=st.integers(0, 2))
        def link_restored(self, device: int) -> None:
            device_id = self._device(device)
            at = self._store(device_id, Kind.LINK_RESTORED)
            tracked = self._open(device_id, Kind.LINK_LOST.value)
            if tracked is not None:
                tracked.model = auto_resolve(tracked.model, at=at, outcome="link restored")

        @rule(data=st.data(), action=st.sampled_from(list(Action)))
        def decide(self, data: st.DataObject, action: Action) -> None:
            if not self.alarms:
                return
            tracked = data.draw(st.sampled_from(self.alarms))
            text = "sent" if action is Action.ESCALATE else "no_help_needed"
            try:
                self.loop.run_until_complete(
                    q.act(
                        self.aconn,
                        alarm_id=tracked.alarm_id,
                        action=action,
                        by=Actor(name="op", role="operator"),
                        text=text if action is not Action.ANSWER else None,
                    )
                )
                refused = False
            except TransitionError:
                refused = True
            allowed = tracked.model.state in ALLOWED_FROM[action]
            assert refused == (not allowed), f"{action} from {tracked.model.state}"
            if allowed:
                outcome = text if action is Action.RESOLVE else None
                now = datetime.now(UTC)
                tracked.model = apply(tracked.model, action, at=now, actor="op", outcome=outcome)

        @invariant()
        def same_everywhere(self) -> None:
            if not self.alarms:
                return
            with psycopg.connect(database_url) as conn:
                rows = {
                    r[0]: r[1:]
                    for r in conn.execute(
                        "SELECT alarm_id, state, event_count, reset_at_device IS NOT NULL,"
                        " answered_at IS NOT NULL, escalated_at IS NOT NULL, outcome"
                        " FROM alarms WHERE alarm_id = ANY(%s)",
                        ([t.alarm_id for t in self.alarms],),
                    ).fetchall()
                }
            for t in self.alarms:
                m = t.model
                expected = (
                    m.state.value,
                    m.event_count,
                    m.reset_at_device is not None,
                    m.answered_at is not None,
                    m.escalated_at is not None,
                    m.outcome,
                )
                assert rows[t.alarm_id] == expected, f"{m.kind}: model {expected}"
            open_ids = [t for t in self.alarms if t.model.state is not AlarmState.RESOLVED]
            assert len({(t.device_id, t.model.kind) for t in open_ids}) == len(open_ids)

    return SameMachine


def test_the_pure_machine_and_the_database_agree_on_every_step(database_url: str) -> None:
    run_state_machine_as_test(
        _machine(database_url),
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
