#!/usr/bin/env bash
# Installs the clients that herald's tests drive, only those that are
# missing: Debian packages with apt-get (root, or sudo), and npm packages from
# the lockfile in each directory given as an argument (`npm ci`). Quick and
# silent when everything is already there.
#
# usage: install_clients.sh NPM_DIR...
set -euo pipefail

# python3-libtorrent, transmission-cli, aria2, opentracker: e2e;
# chromium, iproute2: wstracker's WebTorrent-in-Chromium test;
# systemd (systemd-analyze), podman, prometheus (promtool): the packaging tests;
# nats-server: cluster's partition test; pebble (and pebble-challtestsrv):
# the ACME test (TestTLSACME).
debs=(python3-libtorrent transmission-cli aria2 opentracker chromium iproute2 systemd podman prometheus nats-server pebble)
missing=()
for pkg in "${debs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]} > 0)); then
	sudo=()
	if ((EUID != 0)); then
		sudo=(sudo)
	fi
	echo "install_clients: installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for dir in "$@"; do
	# npm ci wipes and reinstalls node_modules, so run it only when the
	# lockfile changed since the last install.
	stamp="$dir/node_modules/.installed-package-lock.json"
	if cmp -s "$dir/package-lock.json" "$stamp"; then
		continue
	fi
	if ! command -v npm >/dev/null; then
		echo "install_clients: npm not found; the tests in $dir need Node.js 20 and npm" >&2
		exit 1
	fi
	echo "install_clients: npm ci in $dir"
	# --ignore-scripts: install scripts of WebRTC helpers download binaries,
	# which cannot be fetched here.
	(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
	cp "$dir/package-lock.json" "$stamp"
done
