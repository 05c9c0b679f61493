#!/usr/bin/env bash
# What the test suite needs beside Python, installed when missing (as root, with apt-get):
# Node.js + npm (the PineTS checker, the dashboard's chart library), Chromium (dashboard tests)
# and a PostgreSQL server on 127.0.0.1 (library tests, via .ci/postgres.sh).
# Prints `export AIO_TEST_POSTGRES_URL=...` on stdout; everything else goes to stderr. Where
# something cannot be installed it says so: locally those tests skip, under CI=true they fail.
set -uo pipefail
cd "$(dirname "$0")/.."

need=()
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "services.sh: installing ${need[*]}" >&2
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
    else
        echo "services.sh: missing ${need[*]}; install them (the tests that need them skip)" >&2
    fi
fi

if ! bash .ci/postgres.sh; then
    echo "services.sh: no PostgreSQL server (its tests skip locally, fail under CI)" >&2
fi
