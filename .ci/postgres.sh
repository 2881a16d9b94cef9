#!/usr/bin/env bash
# Brings up a local PostgreSQL for the checkpointer tests on a Debian machine, as root.
# Idempotent: installs the server if missing, creates a cluster if there is none, lets
# 127.0.0.1 / ::1 connect with trust auth (test machines only), starts the cluster, waits until
# it accepts connections, creates the tests' own database (graphflow_test, or $GRAPHFLOW_PG_DB:
# the tests never write into the server's default `postgres` database) and prints the DSN to use
# (e.g. as GRAPHFLOW_PG_DSN). The DSN is the only line on stdout; everything else goes to
# stderr. Exports nothing.
set -euo pipefail
# Everything any command prints goes to stderr; fd 3 (the original stdout) carries only the DSN.
exec 3>&1 1>&2

log() { echo "postgres.sh: $*" >&2; }
# Runs a command with its output on stderr and fd 3 closed: a server it starts must not hold the
# caller's stdout open, or a `$(bash .ci/postgres.sh)` capture would never finish.
quiet() { "$@" >&2 3>&-; }

if [ "$(id -u)" != "0" ]; then
  log "must run as root"; exit 1
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres \
    >/dev/null 2>&1; then
  log "installing postgresql"
  quiet apt-get update -qq
  quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

# The newest installed server version, and its cluster (created if the package made none).
version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
cluster="main"
if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {f=1} END {exit !f}'
then
  log "creating cluster $version/$cluster"
  quiet pg_createcluster "$version" "$cluster"
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
  quiet pg_ctlcluster "$version" "$cluster" start
elif [ "$changed" = "1" ]; then
  quiet pg_ctlcluster "$version" "$cluster" reload
fi

db="${GRAPHFLOW_PG_DB:-graphflow_test}"
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$port"; then
    if [ -z "$(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" 3>&-)" ]; then
      log "creating database $db"
      quiet createdb -h 127.0.0.1 -p "$port" -U postgres "$db"
    fi
    echo "postgresql://postgres@127.0.0.1:$port/$db" >&3
    exit 0
  fi
  sleep 0.5
done
log "PostgreSQL did not become ready on 127.0.0.1:$port"
exit 1
