# `make test` installs the clients the tests drive (only the missing ones;
# apt-get needs root or sudo) and runs every test. With the clients
# installed, E2E_REQUIRE_CLIENTS=1 makes a test that cannot find its client
# fail instead of skip.

GO ?= go

# Directories whose package-lock.json pins npm clients for the tests.
NPM_DIRS = e2e/testdata/node wstracker/testdata stats/testdata/browser

.PHONY: test clients

test: clients
	E2E_REQUIRE_CLIENTS=1 $(GO) test ./...

clients:
	e2e/testdata/install_clients.sh $(NPM_DIRS)
