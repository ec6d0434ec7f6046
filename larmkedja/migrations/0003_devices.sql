-- Device supervision: the registry, liveness deadlines, mains and battery.

-- One row per device, filled on its first event. Written on every batch that carries the
-- device's events, so it keeps room for HOT updates (fillfactor) and has no index on the
-- columns a heartbeat changes; the offline sweep reads the table (see docs/devices.md).
CREATE TABLE devices (
    device_id              text        PRIMARY KEY,
    site                   text        NOT NULL,
    first_seen             timestamptz NOT NULL,
    last_seen              timestamptz NOT NULL,
    heartbeat_interval_s   double precision,
    offline_due_at         timestamptz NOT NULL,
    online                 boolean     NOT NULL DEFAULT true,
    online_changed_at      timestamptz NOT NULL DEFAULT now(),
    on_mains               boolean     NOT NULL DEFAULT true,
    mains_lost_at          timestamptz,
    link_ok                boolean     NOT NULL DEFAULT true,
    battery_percent        double precision,
    battery_reported_at    timestamptz,
    discharge_pct_per_h    double precision,   -- observed in the last outage (NULL: none yet)
    backup_hours_estimate  double precision,   -- hours left if (or since) mains is gone
    full_battery_hours     double precision,   -- hours a full battery would last
    rate_source            text,               -- 'observed', 'learned' or 'spec'
    backup_below_spec      boolean     NOT NULL DEFAULT false,
    version                integer     NOT NULL DEFAULT 1
) WITH (fillfactor = 70);
CREATE INDEX devices_site ON devices (site);
-- Small partial indexes: they change only when a device goes offline / loses mains.
CREATE INDEX devices_offline ON devices (device_id) WHERE NOT online;
CREATE INDEX devices_on_battery ON devices (site, mains_lost_at) WHERE NOT on_mains;

-- A device came back: end its `device.offline` alert and technical alarm.
CREATE FUNCTION larm_device_back(p_device_id text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM larm_resolve_alert('device.offline', p_device_id,
        jsonb_build_object('back_at', now()));
    UPDATE alarms SET state = 'resolved', resolved_at = now(), resolved_by = 'system',
                      outcome = 'device back online', version = version + 1
    WHERE device_id = p_device_id AND kind = 'device.offline' AND state <> 'resolved';
END $$;

-- A device went silent: `device.offline` alert and a technical alarm in the operator queue.
CREATE FUNCTION larm_device_offline(
    p_device_id text, p_site text, p_last_seen timestamptz, p_period_s double precision,
    p_unanswered_s double precision
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM larm_raise_alert(p_site, 'device.offline', 'critical', p_device_id,
        jsonb_build_object('device_id', p_device_id, 'last_seen', p_last_seen,
                           'heartbeat_period_s', p_period_s));
    INSERT INTO alarms (site, device_id, kind, priority, source, raised_at, last_event_at,
                        unanswered_due_at, details)
    VALUES (p_site, p_device_id, 'device.offline', 4, 'system', now(), now(),
            now() + make_interval(secs => p_unanswered_s),
            jsonb_build_object('last_seen', p_last_seen))
    ON CONFLICT (device_id, kind) WHERE state <> 'resolved' DO NOTHING;
END $$;

-- An area-wide power cut: one `site.power_cut` incident (alert and one technical alarm for the
-- site) instead of one alert per device; each further device that loses mains folds into it.
CREATE FUNCTION larm_raise_power_cut(
    p_site text, p_devices integer, p_unanswered_s double precision
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_details jsonb := jsonb_build_object('site', p_site, 'devices_on_battery', p_devices);
BEGIN
    IF larm_raise_alert(p_site, 'site.power_cut', 'critical', p_site, v_details) IS NOT NULL THEN
        INSERT INTO alarms (site, device_id, kind, priority, source, raised_at, last_event_at,
                            unanswered_due_at, details)
        VALUES (p_site, 'site:' || p_site, 'site.power_cut', 4, 'system', now(), now(),
                now() + make_interval(secs => p_unanswered_s), v_details)
        ON CONFLICT (device_id, kind) WHERE state <> 'resolved' DO NOTHING;
    ELSE
        UPDATE alerts SET details = alerts.details || v_details
        WHERE kind = 'site.power_cut' AND subject = p_site AND resolved_at IS NULL;
        UPDATE alarms SET event_count = event_count + 1, last_event_at = now(),
                          details = alarms.details || v_details, version = version + 1
        WHERE device_id = 'site:' || p_site AND kind = 'site.power_cut' AND state <> 'resolved';
    END IF;
END $$;

-- The power is back for most of the area: end the incident; the devices still on battery get
-- their own `device.on_battery` alert.
CREATE FUNCTION larm_resolve_power_cut(p_site text, p_remaining integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    PERFORM larm_resolve_alert('site.power_cut', p_site,
        jsonb_build_object('devices_on_battery', p_remaining));
    UPDATE alarms SET state = 'resolved', resolved_at = now(), resolved_by = 'system',
                      outcome = 'mains back in the area', version = version + 1
    WHERE device_id = 'site:' || p_site AND kind = 'site.power_cut' AND state <> 'resolved';
    FOR d IN SELECT device_id, mains_lost_at FROM devices WHERE site = p_site AND NOT on_mains LOOP
        PERFORM larm_raise_alert(p_site, 'device.on_battery', 'warning', d.device_id,
            jsonb_build_object('device_id', d.device_id, 'mains_lost_at', d.mains_lost_at));
    END LOOP;
END $$;
