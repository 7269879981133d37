# `make test` installs the clients the tests drive (only the missing ones;
# apt-get needs root or sudo) and runs every test. With the clients
# installed, E2E_REQUIRE_CLIENTS=1 makes a test that cannot find its client
# fail instead of skip.

GO ?= go

# Directories whose package-lock.json pins npm clients for the tests.
NPM_DIRS = e2e/testdata/node wstracker/testdata stats/testdata/browser

.PHONY: test clients build image

test: clients
	E2E_REQUIRE_CLIENTS=1 $(GO) test ./...

clients:
	e2e/testdata/install_clients.sh $(NPM_DIRS)

# A static binary stamped with its commit (GOFLAGS may say -buildvcs=false).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=true -o herald ./cmd/herald

# The container image of dist/Containerfile: the static binary and nothing else.
image:
	rm -rf build/image && mkdir -p build/image/state
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=true -o build/image/herald ./cmd/herald
	podman build -f dist/Containerfile -t herald build/image
