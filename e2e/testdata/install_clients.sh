#!/usr/bin/env bash
# Installs the BitTorrent clients herald's e2e tests drive, only those that
# are missing: Debian packages with apt-get (root, or sudo), and the npm
# bittorrent-tracker client into e2e/testdata/node from its lockfile. Quick
# and silent when everything is already there.
set -euo pipefail

cd "$(dirname "$0")"

debs=(python3-libtorrent transmission-cli aria2 opentracker)
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

# npm ci wipes and reinstalls node_modules, so run it only when the lockfile
# changed since the last install.
stamp=node/node_modules/.installed-package-lock.json
if ! cmp -s node/package-lock.json "$stamp"; then
	if ! command -v npm >/dev/null; then
		echo "install_clients: npm not found; the npm bittorrent-tracker tests need Node.js 20 and npm" >&2
		exit 1
	fi
	echo "install_clients: npm ci in e2e/testdata/node"
	# --ignore-scripts: the WebRTC helpers' install scripts download binaries;
	# the HTTP and UDP tracker client needs none of them.
	(cd node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
	cp node/package-lock.json "$stamp"
fi
