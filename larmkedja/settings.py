"""Settings (contract §4 and the project's own), read once from the environment at start.

Every process builds one `Settings` in `main` and passes it down; nothing else reads the
environment. Seconds and minutes may be fractional so tests can run a night in seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Positive = Annotated[float, Field(gt=0)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LARM_", extra="ignore", frozen=True)

    # --- contract §4 ---
    answer_target_s: Positive = 33.0
    answer_window_s: Positive = 3600.0
    unanswered_alert_s: Positive = 60.0
    heartbeat_misses: Annotated[int, Field(ge=1)] = 3
    battery_spec_hours: Positive = 48.0
    recheck_minutes: Positive = 15.0
    patrol_ack_minutes: Positive = 10.0

    # --- the case of an alarm (contract §6) ---
    # The codes an alarm is closed with (`GET /api/v1/outcomes`); a municipality sets its own,
    # as JSON: LARM_OUTCOME_CODES='["no_help_needed", …]'.
    outcome_codes: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]],
        Field(min_length=1, max_length=100),
    ] = [
        "no_help_needed",
        "help_by_phone",
        "visit",
        "ambulance",
        "false_alarm",
        "technical_fault",
        "test",
    ]
    # An alarm answered and then not resolved (nor escalated) this long raises `alarm.stale`.
    stale_answered_minutes: Positive = 30.0  # contract §6
    # Flood mode: this many technical alarms of one site and kind raised within the window
    # become one incident in the queue (alarms/queue/incidents_psycopg.py).
    flood_threshold: Annotated[int, Field(ge=2)] = 10
    flood_window_s: Positive = 60.0
    # Hand-over notes from home care to the night patrol: a note left before this local time
    # (in `timezone`; HH:MM or HH:MM:SS) must be acknowledged by it that evening; one left
    # after it, within `handover_ack_late_s`. Not acknowledged in time: `handover.unacknowledged`.
    handover_ack_by: Annotated[
        str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$")
    ] = "22:30"
    handover_ack_late_s: Positive = 1800.0
    # At most this many notes on one person for one night.
    handover_notes_max: Annotated[int, Field(ge=1)] = 20

    # --- the service-level report (contract §6) ---
    # An alarm answered after this is a breach (the TSA code: 99 % within 180 s).
    report_answer_bound_s: Positive = 180.0
    # Staff at the door within (Swedish municipalities promise 20 to 60 min, town vs rural).
    arrival_promise_town_s: Positive = 1800.0
    arrival_promise_rural_s: Positive = 3600.0
    # A device with no alarm and no test this long is due a test call (`device.test_due`);
    # users are asked to test monthly. Checked every `test_due_every_s`.
    test_due_days: Positive = 30.0  # contract §6
    test_due_every_s: Positive = 300.0
    # A test an operator asked for must arrive within this, or it is a technical alarm.
    test_request_window_s: Positive = 600.0

    # --- where things are ---
    database_url: str = "postgresql://larmkedja@127.0.0.1:5432/larmkedja"
    # The owner's URL, for migrations only (`larmkedja migrate`); the services run as the
    # `larm_app` role of `database_url`, which cannot change the audit log.
    database_admin_url: str | None = None
    app_db_password: str | None = None
    # Every query of a service has an answer within this or its connection is closed and made
    # again (a hung primary never answers; larmkedja/db_connect.py). A multi-host URL with
    # `target_session_attrs=read-write` reaches whichever node is the primary (docs/scaling.md).
    db_deadline_s: Positive = 5.0
    # The processes' own roles (`larm_ingest`, `larm_engine`, `larm_api`, `larm_gateway`), set
    # by `larmkedja migrate`: JSON, e.g. {"larm_ingest": "…"}. Each process connects with its
    # own `database_url`.
    db_role_passwords: dict[str, str] = {}
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    # Independent receiving paths (docs/scaling.md): two brokers that share nothing. The
    # gateway publishes every event to each, the engine publishes the outbox on the first it
    # is connected to; ingest runs one process per path, each with its LARM_MQTT_HOST/PORT.
    # Empty: the one broker above. E.g. LARM_MQTT_PATHS='["10.0.0.1:1883","10.0.1.1:1883"]'.
    mqtt_paths: list[Annotated[str, Field(pattern=r"^[^\s:]+:[0-9]{1,5}$")]] = []
    # A broker that says nothing for 1.5 times this is taken for dead and left (a hung host).
    mqtt_keepalive_s: Annotated[int, Field(ge=5, le=600)] = 30
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca: str | None = None  # a client uses TLS with this CA (e.g. the local one)
    mqtt_tls: bool = False  # `make up` adds a TLS listener with a generated local CA
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # A request body over this many bytes is answered 413 before it is read (the largest
    # legitimate body, a night plan of 200 checks, is under 40 KiB).
    api_max_body_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    # ... and one that has not arrived within this many seconds, 408 (slowloris).
    api_body_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    # Connections the API serves at once; more are answered 503 (uvicorn's limit_concurrency).
    api_max_connections: Annotated[int, Field(ge=10)] = 500

    def broker_paths(self) -> list[tuple[str, int]]:
        """(host, port) of every receiving path: LARM_MQTT_PATHS, or the one broker."""
        if not self.mqtt_paths:
            return [(self.mqtt_host, self.mqtt_port)]
        return [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in self.mqtt_paths]

    # --- ingest ---
    ingest_instance: str = "1"
    # Empty: a plain subscription (one ingest process; a broker restart loses nothing). Set a
    # group name to share the load between several processes (see docs/reliability.md).
    ingest_share_group: str = ""
    # Several ingest processes without a share group (docs/reliability.md): each subscribes to
    # every event in its own session and stores the devices of its partition (0-based).
    ingest_partitions: Annotated[int, Field(ge=1, le=64)] = 1
    ingest_partition: Annotated[int, Field(ge=0, le=63)] = 0
    # "5" (the default: receive maximum, session expiry) or "3.1.1" (Mosquitto's shared
    # subscriptions work for it too; faster to decode; memory bounded by the broker's
    # max_inflight_messages). See docs/bench.md for what each gives.
    ingest_mqtt_protocol: Literal["5", "3.1.1"] = "5"
    # Bulk writers, each with its own connection; a device's events always go to the same one
    # (ingest/routing.py). Two keep the database busy while Python frames the next batch.
    ingest_writers: Annotated[int, Field(ge=1, le=8)] = 2
    ingest_batch_max: Annotated[int, Field(ge=1, le=65_535)] = 2000
    ingest_flush_s: Positive = 0.05
    ingest_receive_maximum: Annotated[int, Field(ge=1, le=65_535)] = 20_000
    ingest_session_expiry_s: Annotated[int, Field(ge=1)] = 7 * 24 * 3600
    ingest_metrics_port: Annotated[int, Field(ge=0, le=65_535)] = 9101
    ingest_metrics_host: str = "127.0.0.1"
    events_chunk_interval_s: Positive = 3600.0

    # --- engine (deadlines, outbox) ---
    engine_instance: str = "1"
    engine_tick_s: Positive = 0.5
    # One engine owns the deadlines; a hung owner loses the lock after this long without a word
    # on its lock session, and a standby takes over (alarms/runtime/leadership_psycopg.py).
    engine_lease_s: Positive = 10.0
    engine_metrics_port: Annotated[int, Field(ge=0, le=65_535)] = 9102
    engine_metrics_host: str = "127.0.0.1"

    # --- api ---
    token_cache_s: Annotated[float, Field(ge=0)] = 5.0
    timezone: str = "Europe/Stockholm"

    # --- devices (issue: device supervision) ---
    heartbeat_default_s: Positive = 90.0
    power_cut_devices: Annotated[int, Field(ge=2)] = 20
    power_cut_window_s: Positive = 300.0
    backup_alert_hours: Positive = 12.0
    battery_ok_percent: Annotated[float, Field(ge=0, le=100)] = 50.0

    # --- night supervision ---
    night_lead_minutes: Positive = 60.0  # a plan's night starts this long before its first check

    # --- retention (applied by `larmkedja migrate`, enforced by the engine) ---
    retention_days: Annotated[int, Field(ge=1)] = 90
    alarm_retention_days: Annotated[int, Field(ge=1)] = 1825
    audit_retention_days: Annotated[int, Field(ge=1)] = 1825
    retention_every_s: Positive = 3600.0

    # --- security ---
    auth_failures_per_minute: Annotated[int, Field(ge=1)] = 20
    # The local broker's password and ACL files, where `device provision` writes, and its pid
    # (reloaded with SIGHUP after a change).
    mqtt_auth_dir: str | None = None
    mqtt_broker_pid_file: str | None = None
    # The other brokers that read the same files (two receiving paths on one machine).
    mqtt_more_broker_pid_files: list[str] = []

    # --- protocol gateway (0 switches a receiver off) ---
    gateway_instance: str = "1"
    gateway_host: str = "127.0.0.1"
    gateway_scaip_port: Annotated[int, Field(ge=0, le=65_535)] = 5060  # SIP: UDP and TCP
    gateway_sos_access_port: Annotated[int, Field(ge=0, le=65_535)] = 5070  # TCP
    gateway_dc09_port: Annotated[int, Field(ge=0, le=65_535)] = 5080  # UDP and TCP
    gateway_metrics_port: Annotated[int, Field(ge=0, le=65_535)] = 9103
    gateway_metrics_host: str = "127.0.0.1"
    gateway_publish_timeout_s: Positive = 5.0  # PUBACK wait before a device is told to retry
    gateway_registry_cache_s: Annotated[float, Field(ge=0)] = 5.0
    gateway_heartbeat_s: Positive = 90.0  # the interval SCAIP devices are asked for
    gateway_ping_min_s: Annotated[float, Field(ge=0)] = 15.0  # SOS Access: faster is 101
    # The gateway's server key (issue 18): SOS Access passwords are stored as its HMAC, SIP
    # digest nonces are signed with it. 32+ random characters, from the environment (`make up`
    # keeps it in .state/secrets.json, compose in deploy/.env), never on a command line.
    gateway_secret_key: Annotated[SecretStr, Field(min_length=32)] | None = None
    gateway_nonce_s: Positive = 300.0  # a SIP digest nonce is good this long
    # Slow clients: a message must be whole within `message_deadline_s` of its first byte; a
    # connection without a whole message for `idle_s`, or open `connection_lifetime_s`, is
    # closed between messages (the device reconnects).
    gateway_message_deadline_s: Positive = 10.0
    gateway_idle_s: Positive = 60.0
    gateway_connection_lifetime_s: Positive = 3600.0
    # Caps per receiver: open TCP connections and datagrams in hand, in all and from one
    # address (an IPv4 address, an IPv6 /64); beyond them a connection is closed at once and a
    # datagram dropped, and counted. Raise the per-source caps for a relay in front of devices.
    gateway_max_connections: Annotated[int, Field(ge=1)] = 2000
    gateway_max_connections_per_source: Annotated[int, Field(ge=1)] = 100
    gateway_max_datagrams: Annotated[int, Field(ge=1)] = 2000
    gateway_max_datagrams_per_source: Annotated[int, Field(ge=1)] = 100
    # Dead letters of refused messages: per source address (this many, refilled per minute),
    # and of all sources together; beyond them a refusal is only counted.
    gateway_dead_letters_per_minute: Annotated[int, Field(ge=1)] = 10
    gateway_dead_letters_total_per_minute: Annotated[int, Field(ge=1)] = 600

    # --- self-watch ---
    silence_s: Positive = 300.0
    commit_stall_s: Positive = 30.0
    service_heartbeat_s: Positive = 2.0
    service_stale_s: Positive = 10.0

    @model_validator(mode="after")
    def _one_way_to_scale_ingest(self) -> Settings:
        if self.ingest_partition >= self.ingest_partitions:
            raise ValueError("LARM_INGEST_PARTITION must be below LARM_INGEST_PARTITIONS")
        if self.ingest_partitions > 1 and self.ingest_share_group:
            raise ValueError(
                "LARM_INGEST_PARTITIONS and LARM_INGEST_SHARE_GROUP exclude each other"
            )
        return self
