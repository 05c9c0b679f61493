#!/usr/bin/env bash
# Install (if needed) and start a real PostgreSQL server on 127.0.0.1 for the library tests.
#
# Idempotent: safe to run again when PostgreSQL is already installed, the cluster exists,
# the server runs, or the role/database exist. Runs as root (Debian/Ubuntu, apt-get).
#
# Prints one line on stdout, for `eval "$(.ci/postgres.sh)"`:
#     export AIO_TEST_POSTGRES_URL=postgresql+psycopg://aio:...@127.0.0.1:5432/aio_test
# and writes the same line to $AIO_PG_ENV_FILE (default: ${TMPDIR:-/tmp}/aio_postgres.env)
# so a CI script can `source` it. Everything else goes to stderr.
#
# Settings (environment): AIO_PG_USER (aio), AIO_PG_PASSWORD (aio_test_pw),
# AIO_PG_DB (aio_test), AIO_PG_ENV_FILE.
set -euo pipefail

PG_USER="${AIO_PG_USER:-aio}"
PG_PASSWORD="${AIO_PG_PASSWORD:-aio_test_pw}"
PG_DB="${AIO_PG_DB:-aio_test}"
ENV_FILE="${AIO_PG_ENV_FILE:-${TMPDIR:-/tmp}/aio_postgres.env}"

log() { echo "postgres.sh: $*" >&2; }

for name in PG_USER PG_DB; do
    if ! [[ "${!name}" =~ ^[a-z_][a-z0-9_]*$ ]]; then
        log "$name='${!name}' must be a plain lower-case identifier"; exit 2
    fi
done
if [[ "$PG_PASSWORD" == *"'"* || "$PG_PASSWORD" == *"@"* || "$PG_PASSWORD" == *"/"* || "$PG_PASSWORD" == *":"* ]]; then
    log "AIO_PG_PASSWORD must not contain quotes, '@', '/' or ':'"; exit 2
fi

as_postgres() {
    if command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

# 1. Install the Debian package when the server binaries are missing.
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing PostgreSQL (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends postgresql >&2
fi

VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
CLUSTER="main"

# 2. Create the cluster if the package did not (e.g. create_main_cluster = false).
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {found=1} END {exit !found}'; then
    log "creating cluster $VERSION/$CLUSTER"
    pg_createcluster "$VERSION" "$CLUSTER" >&2
fi
PORT="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $3}')"

# 3. Start it unless it is already online.
STATUS="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')"
if [[ "$STATUS" != online* ]]; then
    log "starting cluster $VERSION/$CLUSTER on port $PORT"
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then break; fi
    sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    log "server on 127.0.0.1:$PORT did not become ready; see /var/log/postgresql/"; exit 1
fi

# 4. Role and database (idempotent).
as_postgres psql -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
        CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD';
    ELSE
        ALTER ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD';
    END IF;
END
\$\$;
SQL
if ! as_postgres psql -tA -p "$PORT" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    log "creating database $PG_DB"
    as_postgres createdb -p "$PORT" -O "$PG_USER" "$PG_DB"
fi

# 5. Prove a password login over TCP works, then publish the URL.
PGPASSWORD="$PG_PASSWORD" psql -q -h 127.0.0.1 -p "$PORT" -U "$PG_USER" -d "$PG_DB" -c "SELECT 1" >/dev/null

LINE="export AIO_TEST_POSTGRES_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PORT/$PG_DB"
mkdir -p "$(dirname "$ENV_FILE")"
echo "$LINE" > "$ENV_FILE"
log "ready: PostgreSQL $VERSION on 127.0.0.1:$PORT, database $PG_DB (env line written to $ENV_FILE)"
echo "$LINE"
