#!/usr/bin/env bash
# Brings up a local PostgreSQL for the checkpointer tests on a Debian machine, as root.
# Idempotent: installs the server if missing, creates a cluster if there is none, lets
# 127.0.0.1 / ::1 connect with trust auth (test machines only), starts the cluster, waits until
# it accepts connections and prints the DSN to use (e.g. as GRAPHFLOW_PG_DSN). Exports nothing.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

if [ "$(id -u)" != "0" ]; then
  log "must run as root"; exit 1
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres \
    >/dev/null 2>&1; then
  log "installing postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# The newest installed server version, and its cluster (created if the package made none).
version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
cluster="main"
if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {f=1} END {exit !f}'
then
  log "creating cluster $version/$cluster"
  pg_createcluster "$version" "$cluster" >/dev/null
fi
port="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $3}')"
conf_dir="/etc/postgresql/$version/$cluster"
hba="$conf_dir/pg_hba.conf"

# Trust local TCP connections: put our rules first (pg_hba is first-match), once.
marker="# graphflow-ci: trust local TCP"
if ! grep -qF "$marker" "$hba"; then
  log "configuring $hba"
  tmp="$(mktemp)"
  {
    echo "$marker"
    echo "host    all    all    127.0.0.1/32    trust"
    echo "host    all    all    ::1/128         trust"
    cat "$hba"
  } >"$tmp"
  cat "$tmp" >"$hba"   # keep the file's owner and mode
  rm -f "$tmp"
  changed=1
else
  changed=0
fi

status="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $4}')"
if [ "$status" != "online" ]; then
  log "starting cluster $version/$cluster on port $port"
  pg_ctlcluster "$version" "$cluster" start
elif [ "$changed" = "1" ]; then
  pg_ctlcluster "$version" "$cluster" reload
fi

for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$port"; then
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    exit 0
  fi
  sleep 0.5
done
log "PostgreSQL did not become ready on 127.0.0.1:$port"
exit 1
