-- Issue 18: a sender without a secret only when an administrator says so.
--
-- `plain` is that explicit choice (`larmkedja sender add --plain`): a SIA DC-09 account that
-- sends unencrypted blocks, a SCAIP controller identified by its cid alone. Every other sender
-- has a secret, and the table refuses a row that has neither.
--
-- The secret column now holds:
--   sos-access: 'hmac-sha256$' || HMAC-SHA256(K, sha256(password)), K from the gateway's server
--               key (LARM_GATEWAY_SECRET_KEY), which is not in the database. Rows from before
--               this migration keep their bare sha256 (64 hex digits) until `larmkedja migrate`
--               runs with the server key and replaces each by its HMAC (no password needed:
--               the HMAC is taken over that sha256). Until then they are still accepted, so no
--               transmitter in the field is locked out by the upgrade.
--   scaip:      'digest-md5$' || HA1, the SIP digest MD5(cid:realm:password).
--   sia-dc09:   the AES key in hex, as before.
ALTER TABLE gateway_senders ADD COLUMN plain boolean NOT NULL DEFAULT false;

-- Before this migration a DC-09 account or a SCAIP controller without a secret was plain by
-- default. Those devices are in the field and keep working: they become explicitly plain, and
-- `larmkedja sender list` shows them as such until an administrator gives them a secret.
UPDATE gateway_senders SET plain = true
WHERE secret IS NULL AND protocol IN ('scaip', 'sia-dc09');

ALTER TABLE gateway_senders
    ADD CONSTRAINT gateway_senders_plain_or_secret CHECK (plain = (secret IS NULL)),
    ADD CONSTRAINT gateway_senders_sos_access_has_a_password
        CHECK (protocol <> 'sos-access' OR NOT plain);

COMMENT ON COLUMN gateway_senders.secret IS
    'sos-access: hmac-sha256$HMAC(server key, sha256(password)) (or a legacy bare sha256); '
    'scaip: digest-md5$HA1; sia-dc09: the AES key in hex. NULL only for a plain sender.';
COMMENT ON COLUMN gateway_senders.plain IS
    'an administrator chose no secret for this sender (sender add --plain)';
