-- The protocol gateway's sender registry: which SCAIP controller, SOS Access transmitter or
-- SIA DC-09 account is which device of which site. A sender not in here (or revoked) is
-- refused in its protocol's own terms and recorded as a dead letter.
CREATE TABLE gateway_senders (
    protocol     text        NOT NULL CHECK (protocol IN ('scaip', 'sos-access', 'sia-dc09')),
    sender_id    text        NOT NULL CHECK (length(sender_id) BETWEEN 1 AND 64),
    site         text        NOT NULL CHECK (site ~ '^[a-z0-9-]{1,32}$'),
    device_id    text        NOT NULL CHECK (device_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    -- SOS Access: sha256 of the transmitter's 15-character password (hex).
    -- SIA DC-09: the AES key (hex, 128/192/256 bit); the gateway needs it to decrypt.
    secret       text,
    heartbeat_s  double precision CHECK (heartbeat_s > 0),  -- the sender's agreed period
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (protocol, sender_id)
);
CREATE INDEX gateway_senders_device ON gateway_senders (device_id);
