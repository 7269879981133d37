// Package e2e holds herald's end-to-end tests: they build cmd/herald, run it
// as a real process on a loopback port and drive it with real BitTorrent
// clients (Debian's python3-libtorrent, transmission-cli and aria2, and the
// npm bittorrent-tracker client). A test whose client is not installed is
// skipped with a message naming it; `make test` installs them all first and
// sets E2E_REQUIRE_CLIENTS=1, which turns such a skip into a failure. With
// -short every test here is skipped.
package e2e
