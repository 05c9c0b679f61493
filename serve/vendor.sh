#!/usr/bin/env bash
# Installs the dashboard's charting library, TradingView's lightweight-charts (Apache-2.0), from
# the npm registry as pinned in serve/web/package-lock.json, and copies its standalone build
# into serve/static/vendor/, which the app serves itself (no CDN: browsers may be offline).
#   bash serve/vendor.sh          # idempotent; needs node + npm
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/static/vendor"
lib="$here/web/node_modules/lightweight-charts"
want="$(sed -n 's/.*"lightweight-charts": "\([0-9.]*\)".*/\1/p' "$here/web/package.json" | head -1)"
have=""
[ -f "$lib/package.json" ] && have="$(node -p "require('$lib/package.json').version")"
if [ "$have" != "$want" ]; then
    (cd "$here/web" && npm ci --no-audit --no-fund --loglevel=error)
fi
mkdir -p "$dest"
cp "$lib/dist/lightweight-charts.standalone.production.js" "$dest/"
cp "$lib/LICENSE" "$dest/lightweight-charts.LICENSE"
[ -f "$lib/NOTICE" ] && cp "$lib/NOTICE" "$dest/lightweight-charts.NOTICE"
echo "serve/static/vendor: lightweight-charts $want" >&2
