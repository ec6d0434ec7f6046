"""Event code tables shared by the protocols: SIA (DC-03/DC-04) codes, Ademco Contact ID.

A code that is not in a table still becomes something: if it says "alarm" it becomes
`alarm.other` (an operator looks at it: a false alarm costs a minute, a missed one a life);
otherwise the message proves the device is alive and becomes a `heartbeat` that keeps the
original code in `data`. docs/protocols.md has these tables as the integrator's reference.
"""

from __future__ import annotations

from larmkedja.events import Kind

# SIA two-letter codes -> contract kind. Alarm restores map to alarm.cancel.
SIA_CODES: dict[str, Kind] = {
    "MA": Kind.ALARM_BUTTON,  # medical alarm
    "QA": Kind.ALARM_BUTTON,  # emergency alarm
    "PA": Kind.ALARM_BUTTON,  # panic alarm
    "HA": Kind.ALARM_BUTTON,  # holdup / duress alarm
    "FA": Kind.ALARM_SMOKE,  # fire alarm
    "GA": Kind.ALARM_SMOKE,  # gas alarm
    "KA": Kind.ALARM_SMOKE,  # heat alarm
    "BA": Kind.ALARM_DOOR,  # burglary (door / perimeter) alarm
    "UA": Kind.ALARM_OTHER,  # untyped zone alarm
    "MH": Kind.ALARM_CANCEL,  # medical alarm restore
    "QH": Kind.ALARM_CANCEL,
    "PH": Kind.ALARM_CANCEL,
    "HH": Kind.ALARM_CANCEL,
    "FH": Kind.ALARM_CANCEL,
    "GH": Kind.ALARM_CANCEL,
    "KH": Kind.ALARM_CANCEL,
    "BH": Kind.ALARM_CANCEL,
    "UH": Kind.ALARM_CANCEL,
    "BC": Kind.ALARM_CANCEL,  # burglary cancel
    "OC": Kind.ALARM_CANCEL,  # cancel report
    "AT": Kind.POWER_MAINS_LOST,  # AC trouble
    "AR": Kind.POWER_MAINS_RESTORED,  # AC restoral
    "YT": Kind.BATTERY_LOW,  # system battery trouble
    "XT": Kind.BATTERY_LOW,  # transmitter battery trouble
    "TA": Kind.TAMPER,  # tamper alarm
    "YC": Kind.LINK_LOST,  # communications fail
    "YS": Kind.LINK_LOST,  # communications trouble
    "LT": Kind.LINK_LOST,  # phone line trouble
    "YK": Kind.LINK_RESTORED,  # communications restoral
    "LR": Kind.LINK_RESTORED,  # phone line restoral
    "RP": Kind.HEARTBEAT,  # automatic test
    "RX": Kind.HEARTBEAT,  # manual test
}

# The alarm kinds a restore code cancels (the cancel's `alarm_kind`).
SIA_RESTORES: dict[str, Kind] = {
    "MH": Kind.ALARM_BUTTON,
    "QH": Kind.ALARM_BUTTON,
    "PH": Kind.ALARM_BUTTON,
    "HH": Kind.ALARM_BUTTON,
    "FH": Kind.ALARM_SMOKE,
    "GH": Kind.ALARM_SMOKE,
    "KH": Kind.ALARM_SMOKE,
    "BH": Kind.ALARM_DOOR,
    "BC": Kind.ALARM_DOOR,
    "UH": Kind.ALARM_OTHER,
}


def sia_kind(code: str) -> Kind:
    """The kind of a SIA code; unknown `?A` codes (alarms) are `alarm.other`."""
    code = code.upper()
    found = SIA_CODES.get(code)
    if found is not None:
        return found
    return Kind.ALARM_OTHER if len(code) == 2 and code[1] == "A" else Kind.HEARTBEAT


# Contact ID event codes (3 digits) -> kind of a new event (qualifier 1 or 6).
CID_CODES: dict[str, Kind] = {
    "100": Kind.ALARM_BUTTON,  # medical
    "101": Kind.ALARM_BUTTON,  # personal emergency (pendant)
    "102": Kind.ALARM_OTHER,  # fail to report in
    "110": Kind.ALARM_SMOKE,  # fire
    "111": Kind.ALARM_SMOKE,  # smoke
    "114": Kind.ALARM_SMOKE,  # heat
    "151": Kind.ALARM_SMOKE,  # gas
    "162": Kind.ALARM_SMOKE,  # carbon monoxide
    "120": Kind.ALARM_BUTTON,  # panic
    "121": Kind.ALARM_BUTTON,  # duress
    "122": Kind.ALARM_BUTTON,  # silent panic
    "123": Kind.ALARM_BUTTON,  # audible panic
    "130": Kind.ALARM_DOOR,  # burglary
    "131": Kind.ALARM_DOOR,  # perimeter
    "134": Kind.ALARM_DOOR,  # entry / exit
    "641": Kind.ALARM_NO_ACTIVITY,  # senior watch trouble (no activity)
    "301": Kind.POWER_MAINS_LOST,  # AC loss
    "302": Kind.BATTERY_LOW,  # low system battery
    "309": Kind.BATTERY_LOW,  # battery test failure
    "384": Kind.BATTERY_LOW,  # RF transmitter low battery
    "137": Kind.TAMPER,  # tamper
    "383": Kind.TAMPER,  # sensor tamper
    "350": Kind.LINK_LOST,  # communication trouble
    "354": Kind.LINK_LOST,  # failure to communicate event
    "601": Kind.HEARTBEAT,  # manual test
    "602": Kind.HEARTBEAT,  # periodic test
}

# Restores (qualifier 3) of codes whose restore means something of its own.
CID_RESTORES: dict[str, Kind] = {
    "301": Kind.POWER_MAINS_RESTORED,
    "350": Kind.LINK_RESTORED,
    "354": Kind.LINK_RESTORED,
}


def cid_kind(qualifier: str, code: str) -> Kind:
    """Contact ID: qualifier 1 (new) / 6 (previously reported) / 3 (restore), 3-digit code."""
    if qualifier == "3":
        if code in CID_RESTORES:
            return CID_RESTORES[code]
        new = CID_CODES.get(code)
        if (new is not None and new.is_alarm) or code.startswith("1"):
            return Kind.ALARM_CANCEL
        return Kind.HEARTBEAT
    found = CID_CODES.get(code)
    if found is not None:
        return found
    # The 1xx block is alarms in Contact ID; anything else unknown proves life only.
    return Kind.ALARM_OTHER if code.startswith("1") else Kind.HEARTBEAT


def cid_alarm_kind(code: str) -> Kind | None:
    """The alarm kind a Contact ID restore cancels, when known."""
    found = CID_CODES.get(code)
    return found if found is not None and found.is_alarm else None
