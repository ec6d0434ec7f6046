#!/usr/bin/env bash
# Install, idempotently, the system packages larmkedja runs on: Mosquitto 2.0 (+ clients),
# PostgreSQL with TimescaleDB (Apache edition is enough), the test tools, and etcd for the
# high-availability topology.
#   Debian 13: postgresql-17 + postgresql-17-timescaledb from its own apt.
#   Debian 12: PostgreSQL 15 from its apt; TimescaleDB built from Debian 13's source package.
# Never starts a system service: a policy-rc.d is put in place for the install if none exists.
# Prints nothing but progress; exits non-zero on any failure.
set -euo pipefail

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

. /etc/os-release
codename="${VERSION_CODENAME:-}"

log() { printf 'install: %s\n' "$*" >&2; }

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >/dev/null
    apt_updated=1
  fi
}

apt_install() {
  local missing=()
  for p in "$@"; do have_pkg "$p" || missing+=("$p"); done
  [ "${#missing[@]}" = 0 ] && return 0
  apt_update
  log "apt-get install ${missing[*]}"
  with_no_service_start $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Keep package scripts from starting a system-wide broker or cluster: we run our own.
with_no_service_start() {
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created=1
  fi
  local rc=0
  "$@" || rc=$?
  [ "$created" = 1 ] && $SUDO rm -f "$policy"
  return "$rc"
}

pg_major_for_codename() {
  case "$1" in
    bookworm) echo 15 ;;
    trixie) echo 17 ;;
    *) # unknown: newest PostgreSQL already installed, else fail clearly
       local newest
       newest=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
       [ -n "$newest" ] || { log "unsupported OS '$codename' and no PostgreSQL found"; exit 1; }
       echo "$newest" ;;
  esac
}

install_mosquitto() {
  apt_install mosquitto mosquitto-clients
}

build_timescaledb_from_trixie_source() {
  local pg="$1" ext_dir
  ext_dir="$(/usr/lib/postgresql/"$pg"/bin/pg_config --sharedir)/extension"
  if ls "$ext_dir"/timescaledb.control >/dev/null 2>&1; then
    return 0
  fi
  local src_list=/etc/apt/sources.list.d/larmkedja-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    # Same URI and keyring as the machine's own Debian entry.
    local uri keyring
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    keyring=$(awk '/^Signed-By:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    uri="${uri:-http://deb.debian.org/debian}"
    keyring="${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}"
    log "adding deb-src trixie main ($uri)"
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' \
      "$uri" "$keyring" | $SUDO tee "$src_list" >/dev/null
    apt_updated=0
  fi
  apt_install "postgresql-server-dev-$pg" cmake dpkg-dev gcc make libssl-dev
  apt_update
  local work
  work=$(mktemp -d)
  log "building TimescaleDB (Apache edition) for PostgreSQL $pg in $work"
  if ! (
    cd "$work"
    apt-get source -qq timescaledb
    cd timescaledb-*/
    ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DUSE_TELEMETRY=OFF \
      -DPG_CONFIG=/usr/lib/postgresql/"$pg"/bin/pg_config
    make -C build -j"$(nproc)"
    $SUDO make -C build install
  ) >"$work.log" 2>&1; then
    tail -n 40 "$work.log" >&2
    log "TimescaleDB build failed (log above)"
    exit 1
  fi
  rm -rf "$work" "$work.log"
}

install_postgres() {
  local pg
  pg=$(pg_major_for_codename "$codename")
  apt_install "postgresql-$pg"
  if [ "$codename" = trixie ]; then
    apt_install "postgresql-$pg-timescaledb"
  else
    build_timescaledb_from_trixie_source "$pg"
  fi
}

install_ha() {
  # The high-availability topology (docs/scaling.md, `make up-ha`, `make test-ha`): Patroni
  # manages three PostgreSQL nodes and keeps its leader key in a three-member etcd (Debian 12:
  # etcd-server 3.4). Patroni itself comes from deploy/ha/patroni.lock (`make patroni`), not
  # from Debian 12, whose 3.0.2 lets a primary that hung past its TTL take the leader key back.
  # strace: `make test-ha` slows one node's disk by delaying its fsyncs (tests/ha/slow_disk.py).
  apt_install etcd-server strace
}

install_tools() {
  # chromium: the browser tests (Playwright drives Debian's build; nothing is downloaded).
  # prometheus: promtool for the rule tests, and the local stack's own Prometheus.
  # sip-tester: sipp, the SIP client that drives the gateway's SCAIP receiver in tests.
  # iproute2: ip and tc, the network namespace and silenced veth of the partition test.
  apt_install ca-certificates chromium fonts-dejavu-core prometheus openssl sip-tester iproute2
}

case "${1:-all}" in
  mosquitto) install_mosquitto ;;
  postgres) install_postgres ;;
  ha) install_ha ;;
  all) install_mosquitto; install_postgres; install_tools; install_ha ;;
  *) echo "usage: $0 [all|mosquitto|postgres|ha]" >&2; exit 2 ;;
esac
