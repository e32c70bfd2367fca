#!/usr/bin/env bash
# tahu-client.sh installs the Eclipse Tahu Sparkplug B edge node client
# (npm sparkplug-client, the Sparkplug reference client) that the MQTT
# interop tests drive, into .cache/tahu (gitignored), from the lockfile in
# daemon/mqtt/testdata/tahu (every package pinned with its sha512
# integrity). Idempotent; works offline once npm's cache holds the
# packages.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=daemon/mqtt/testdata/tahu
DEST=.cache/tahu
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	echo "tahu-client: node and npm are needed (apt-get install nodejs npm)" >&2
	exit 1
fi
if [ -f "$DEST/node_modules/sparkplug-client/package.json" ] && cmp -s "$SRC/package-lock.json" "$DEST/package-lock.json"; then
	exit 0
fi
mkdir -p "$DEST"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
npm ci --prefix "$DEST" --prefer-offline --ignore-scripts --no-audit --no-fund --silent
