#!/usr/bin/python3
"""Drive Debian's python3-libtorrent as real BitTorrent peers for herald's e2e tests.

Run with /usr/bin/python3: Debian's libtorrent binding is built for it only.

Modes:
  make TORRENT DATAFILE TRACKER_URL
      Write a private single-file torrent for DATAFILE announcing to TRACKER_URL
      and print its hex info hash.
  seed TORRENT DATADIR BIND_IP TIMEOUT REANNOUNCE
      Seed the file in DATADIR from BIND_IP. Prints "ready <port>" on stdout
      after the first tracker reply. If REANNOUNCE > 0, re-announces every
      REANNOUNCE seconds, so the seeder learns peers that announced after it
      and connects to them (Transmission never dials loopback peers itself).
  leech TORRENT DOWNLOADDIR BIND_IP TIMEOUT
      Download into DOWNLOADDIR. Prints "finished <port>" on stdout once the
      file is complete and the tracker has answered the "completed" announce.
Both run until stdin closes, then send "stopped" and exit 0, or exit 1 when
TIMEOUT seconds pass first.
  refused TORRENT DOWNLOADDIR BIND_IP TIMEOUT
      Start a download and wait for the tracker to refuse it: print
      "refused <the client's message>" and exit 0, or exit 1 when TIMEOUT
      seconds pass first.

One process and one session per peer, like peers on different machines:
libtorrent keeps UDP tracker connection ids in a process-wide cache, so two
sessions in one process would announce with each other's connection id.
(libtorrent 2.0.8 can also crash when many sessions come and go in one
process.) DHT, LSD, UPnP, NAT-PMP and PEX are off and the torrent is private,
so the tracker is the only way the peers can meet. Every wait has a deadline.
The alerts seen are printed to stderr when the process ends.
"""

import os
import select
import sys
import time

import libtorrent as lt


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def make_torrent(torrent_path, data_file, tracker_url):
    fs = lt.file_storage()
    lt.add_files(fs, data_file)
    # v1 only: Transmission 3.00 and aria2 do not speak BitTorrent v2.
    ct = lt.create_torrent(fs, 16 * 1024, lt.create_torrent.v1_only)
    ct.add_tracker(tracker_url)
    ct.set_priv(True)
    ct.set_creator("herald e2e")
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(data_file)))
    with open(torrent_path, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    print(str(lt.torrent_info(torrent_path).info_hash()))


def new_session(bind_ip):
    host = "[%s]" % bind_ip if ":" in bind_ip else bind_ip
    settings = {
        "listen_interfaces": "%s:0" % host,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        # libtorrent blocks tracker URLs on loopback and LAN addresses
        # whose path is not exactly /announce (SSRF mitigation), which
        # would block http://127.0.0.1:P/KEY/announce; a private tracker on
        # a public address is not affected.
        "ssrf_mitigation": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "alert_mask": int(
            lt.alert_category.error
            | lt.alert_category.peer
            | lt.alert_category.port_mapping
            | lt.alert_category.status
            | lt.alert_category.storage
            | lt.alert_category.tracker
            | lt.alert_category.connect
        ),
    }
    # flags=0: no default plugins, so no ut_pex or ut_metadata either.
    return lt.session(settings, 0)


# Every Peer made, so that main can print their alerts however the mode ends.
PEERS = []


class Peer:
    """One session holding one torrent, with its alerts kept for the log."""

    def __init__(self, role, bind_ip, torrent_path, save_path):
        PEERS.append(self)
        self.role = role
        self.session = new_session(bind_ip)
        self.alerts = []
        self.tracker_replies = 0
        self.tracker_errors = []
        self.stopped_sent = False
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent_path)
        params.save_path = save_path
        self.handle = self.session.add_torrent(params)

    def pump(self):
        for a in self.session.pop_alerts():
            line = "%.3f %s %s: %s" % (time.monotonic(), self.role, type(a).__name__, a.message())
            self.alerts.append(line)
            if isinstance(a, lt.tracker_reply_alert):
                self.tracker_replies += 1
            if isinstance(a, lt.tracker_error_alert):
                # message() leaves out the tracker's own words.
                self.tracker_errors.append("%s: %s" % (a.message(), a.failure_reason()))
            if isinstance(a, lt.tracker_announce_alert) and a.event == lt.event_t.stopped:
                self.stopped_sent = True

    def port(self):
        return self.session.listen_port()

    def dump(self):
        if self.session is not None and self.handle.is_valid():
            status = self.handle.status()
            log("--- %s: state=%s progress=%.3f peers=%d seeds=%d listen_port=%d" % (
                self.role, status.state, status.progress, status.num_peers, status.num_seeds, self.port()))
        else:
            log("--- %s: torrent removed" % self.role)
        for line in self.alerts:
            log(line)


def wait_for(what, deadline, peers, done):
    while time.monotonic() < deadline:
        for p in peers:
            p.pump()
        if done():
            return True
        time.sleep(0.1)
    log("timed out waiting for %s" % what)
    return False


def wait_for_stdin_close(deadline, peers):
    """Keep the peers running until the test closes our stdin."""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable and not sys.stdin.read(1):
            return True
        for p in peers:
            p.pump()
    log("deadline passed before stdin closed")
    return False


def shut_down(peers):
    """Remove the torrents, wait until each has sent its stopped announce, then
    end the sessions.

    Deleting a session blocks until its outstanding tracker requests are
    answered or time out, so the tracker has seen the stopped announces when
    this process exits.
    """
    for p in peers:
        p.session.remove_torrent(p.handle)
    sent = wait_for("the stopped announces", time.monotonic() + 10, peers,
                    lambda: all(p.stopped_sent for p in peers))
    for p in peers:
        p.pump()
        p.session = None
    return sent


def seed(torrent_path, data_dir, bind_ip, timeout, reannounce):
    deadline = time.monotonic() + timeout
    seeder = Peer("seeder", bind_ip, torrent_path, data_dir)
    if not wait_for("the seeder's first tracker reply", deadline, [seeder],
                    lambda: seeder.tracker_replies > 0 and seeder.handle.status().is_seeding):
        return 1
    print("ready %d" % seeder.port(), flush=True)
    next_announce = time.monotonic() + reannounce if reannounce > 0 else deadline
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable and not sys.stdin.read(1):
            return 0 if shut_down([seeder]) else 1
        seeder.pump()
        if time.monotonic() >= next_announce:
            seeder.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
            next_announce = time.monotonic() + reannounce
    log("deadline passed before stdin closed")
    return 1


def leech(torrent_path, download_dir, bind_ip, timeout):
    deadline = time.monotonic() + timeout
    leecher = Peer("leecher", bind_ip, torrent_path, download_dir)
    if not wait_for("the download to finish", deadline, [leecher],
                    lambda: leecher.handle.status().is_finished):
        return 1
    # The second reply answers the "completed" announce.
    if not wait_for("the reply to the completed announce", deadline, [leecher],
                    lambda: leecher.tracker_replies >= 2):
        return 1
    print("finished %d" % leecher.port(), flush=True)
    if not wait_for_stdin_close(deadline, [leecher]):
        return 1
    return 0 if shut_down([leecher]) else 1


def refused(torrent_path, download_dir, bind_ip, timeout):
    deadline = time.monotonic() + timeout
    leecher = Peer("refused", bind_ip, torrent_path, download_dir)
    if not wait_for("the tracker's refusal", deadline, [leecher],
                    lambda: leecher.tracker_errors or leecher.tracker_replies):
        return 1
    if leecher.tracker_replies:
        log("the tracker answered instead of refusing")
        return 1
    print("refused %s" % leecher.tracker_errors[0], flush=True)
    return 0


def main(argv):
    try:
        return run(argv)
    finally:
        for p in PEERS:
            p.dump()


def run(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "make" and len(argv) == 5:
        make_torrent(argv[2], argv[3], argv[4])
        return 0
    if mode == "leech" and len(argv) == 6:
        return leech(argv[2], argv[3], argv[4], float(argv[5]))
    if mode == "refused" and len(argv) == 6:
        return refused(argv[2], argv[3], argv[4], float(argv[5]))
    if mode == "seed" and len(argv) == 7:
        return seed(argv[2], argv[3], argv[4], float(argv[5]), float(argv[6]))
    log(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
