// Package bans holds the addresses and networks the tracker refuses for a
// while: bans an operator sets through the admin API, and bans earned by
// a client that keeps provoking refusals (over its rate limit, wrong UDP
// connection ids).
//
// The ban set is immutable and published through an atomic pointer, nil
// while nobody is banned: the check every request makes is one atomic
// load when there are no bans, and a few map lookups (one per distinct
// prefix length in use) when there are. Changes copy the set under a lock;
// they are rare next to the checks.
package bans

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"herald/internal/atomicfile"
	"herald/ratelimit"
)

// Defaults for Config.
const (
	// DefaultAfter is how many refusals a minute earn a client a ban
	// (tracker.ban_after): ten a second for a minute beyond the rate limit
	// is a flood, not a client that announces too often.
	DefaultAfter = 600
	// DefaultDuration is how long an earned ban lasts (tracker.ban_duration).
	DefaultDuration = 10 * time.Minute
)

// Why a ban was set, in Ban.Reason.
const (
	ReasonManual          = "manual"            // by the operator, through the API
	ReasonRateLimited     = "rate_limited"      // kept exceeding its rate limit
	ReasonBadConnectionID = "bad_connection_id" // kept sending wrong UDP connection ids
)

// Ban is one banned address or network.
type Ban struct {
	Prefix  netip.Prefix `json:"prefix"`
	Expires time.Time    `json:"expires"`
	Reason  string       `json:"reason"`
}

// Config sets how clients earn bans and where bans are kept.
type Config struct {
	// After is how many strikes (refusals that count, see Table.Strike) a
	// client may collect in a minute, or at once, before it is banned; 0
	// turns automatic bans off.
	After int
	// Duration is how long an earned ban lasts. Default DefaultDuration.
	Duration time.Duration
	// BadConnectionIDs counts wrong UDP connection ids as strikes. Their
	// source address is unproven: a spoofer could earn a ban for another.
	BadConnectionIDs bool
	// Exempt, if set, names addresses that never earn a ban (herald
	// spares loopback, the operator's own tools).
	Exempt func(netip.Addr) bool
	// OnEarn, if set, is called with each ban a client earns here (not
	// with bans set through Ban or taken from another node by Adopt), from
	// the goroutine of the request that earned it: it must not block.
	// herald queues the ban for the other nodes of its cluster.
	OnEarn func(Ban)
	Logger *slog.Logger
}

// Table is the set of bans. It is safe for concurrent use.
type Table struct {
	cfg     Config
	strikes *ratelimit.Limiter // nil: automatic bans off

	set atomic.Pointer[set] // nil while nobody is banned

	mu      sync.Mutex // serialises changes and saves
	path    string     // the ban file, "" for none; guarded by mu
	dirty   bool       // changed since the last save; guarded by mu
	saveErr string     // the last save's error, logged once; guarded by mu

	earned   atomic.Uint64 // bans clients earned
	received atomic.Uint64 // bans other nodes' clients earned, adopted here
}

// set is one immutable version of the bans.
type set struct {
	bans map[netip.Prefix]Ban
	// expires holds each ban's expiry in Unix nanoseconds under a key of
	// plain integers, which hashes far faster than a netip.Prefix.
	expires map[key]int64
	// bits4 and bits6 are the prefix lengths in bans, per family: a check
	// looks up the address masked to each.
	bits4, bits6 []int
	// maybe is a filter in front of the lookups: the bit of an address's
	// slot (slotOf) is set if a ban may cover it, so that the requests of
	// clients nobody banned cost a bit test, not a hash per length.
	maybe [1 << 16 / 64]uint64
	// wide6 is set when an IPv6 ban is shorter than /32, wider than the
	// slots: every IPv6 address is looked up then.
	wide6 bool
}

// slotOf is the filter slot of a: its first 16 bits for IPv4, a mix of
// its first 32 for IPv6 (most of which start alike, 2001:...).
func slotOf(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return uint32(b[0])<<8 | uint32(b[1])
	}
	b := a.As16()
	top := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return (top * 0x9E3779B1) >> 16
}

// mark sets the filter bits of every slot p covers.
func (s *set) mark(p netip.Prefix) {
	switch {
	case p.Addr().Is6() && p.Bits() < 32:
		s.wide6 = true
	case p.Addr().Is6() || p.Bits() >= 16:
		slot := slotOf(p.Addr())
		s.maybe[slot/64] |= 1 << (slot % 64)
	default:
		first := slotOf(p.Addr())
		for slot := first; slot < first+1<<(16-p.Bits()); slot++ {
			s.maybe[slot/64] |= 1 << (slot % 64)
		}
	}
}

// key is a prefix as integers: an IPv4 address in lo with v4 set, or an
// IPv6 address in hi and lo; host bits zero.
type key struct {
	hi, lo uint64
	bits   uint8
	v4     bool
}

// keyOf returns the key of a (unmapped) masked to bits.
func keyOf(a netip.Addr, bits int) key {
	if a.Is4() {
		b := a.As4()
		v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		return key{lo: v &^ (1<<(32-bits) - 1), bits: uint8(bits), v4: true}
	}
	b := a.As16()
	hi, lo := beUint64(b[:8]), beUint64(b[8:])
	switch {
	case bits <= 64:
		hi &^= 1<<(64-bits) - 1
		lo = 0
	default:
		lo &^= 1<<(128-bits) - 1
	}
	return key{hi: hi, lo: lo, bits: uint8(bits)}
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// New returns an empty table; Restore reads the bans saved before.
func New(cfg Config) (*Table, error) {
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.After < 0 || cfg.Duration < 0 {
		return nil, fmt.Errorf("bans: after %d and duration %v must not be negative", cfg.After, cfg.Duration)
	}
	t := &Table{cfg: cfg}
	if cfg.After > 0 {
		var err error
		if t.strikes, err = ratelimit.New(ratelimit.Config{Rate: float64(cfg.After) / 60, Burst: cfg.After}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Banned reports whether a is banned at now. With no bans it is one
// atomic load.
func (t *Table) Banned(a netip.Addr, now time.Time) bool {
	s := t.set.Load()
	return s != nil && s.match(a, now)
}

func (s *set) match(a netip.Addr, now time.Time) bool {
	a = a.Unmap()
	bits := s.bits4
	if a.Is6() {
		bits = s.bits6
	}
	if slot := slotOf(a); s.maybe[slot/64]&(1<<(slot%64)) == 0 && !(s.wide6 && a.Is6()) {
		return false
	}
	ns := now.UnixNano()
	for _, n := range bits {
		if exp, ok := s.expires[keyOf(a, n)]; ok && ns < exp {
			return true
		}
	}
	return false
}

// Strike records a refusal a client provoked at now; the one that takes
// it past Config.After bans the client (its IPv4 address, or its IPv6 /64,
// as the rate limit counts it) for Config.Duration. reason is the
// Reason* constant it is banned for.
func (t *Table) Strike(a netip.Addr, now time.Time, reason string) {
	if t.strikes == nil || reason == ReasonBadConnectionID && !t.cfg.BadConnectionIDs ||
		t.cfg.Exempt != nil && t.cfg.Exempt(a) || t.strikes.Allow(a, now) {
		return
	}
	p := earnedPrefix(a)
	if t.Banned(a, now) { // strikes from requests already in flight
		return
	}
	b := Ban{Prefix: p, Expires: now.Add(t.cfg.Duration), Reason: reason}
	t.Ban(b)
	t.earned.Add(1)
	t.cfg.Logger.Warn("client banned", "prefix", p, "reason", reason, "until", b.Expires.UTC().Format(time.RFC3339))
	if t.cfg.OnEarn != nil {
		t.cfg.OnEarn(b)
	}
}

// earnedPrefix is what a client at a earns a ban for: its IPv4 address,
// or its IPv6 /64, as the rate limit counts it.
func earnedPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// ErrNotEarned is the error of a ban that no client could have earned: a
// reason other than an earned one, or a prefix other than what a client
// earns a ban for (an IPv4 address, an IPv6 /64, masked).
var ErrNotEarned = errors.New("bans: not an earned ban (reason rate_limited or bad_connection_id, prefix an IPv4 /32 or IPv6 /64)")

// CheckEarned reports whether b has the shape of a ban a client earns
// (see ErrNotEarned): what another node may ask this one to Adopt.
func CheckEarned(b Ban) error {
	if b.Reason != ReasonRateLimited && b.Reason != ReasonBadConnectionID ||
		!b.Prefix.IsValid() || b.Prefix != earnedPrefix(b.Prefix.Addr()) {
		return ErrNotEarned
	}
	return nil
}

// Adopt applies a ban a client earned on another node of the cluster as if
// the client had earned it here, under this node's rules: it is ignored
// (false, nil) when automatic bans are off here (Config.After 0), when the
// address is exempt here (Config.Exempt), or when it is over at now; it
// lasts at most Config.Duration from now, whatever the other node's
// setting or clock; and a ban of the same prefix that lasts longer stays.
// A ban of another shape is ErrNotEarned (see CheckEarned). Adopt does
// not call Config.OnEarn: a ban from the cluster is not sent back to it.
func (t *Table) Adopt(b Ban, now time.Time) (bool, error) {
	if err := CheckEarned(b); err != nil {
		return false, err
	}
	if t.strikes == nil || t.exempt(b.Prefix) || !now.Before(b.Expires) {
		return false, nil
	}
	if limit := now.Add(t.cfg.Duration); b.Expires.After(limit) {
		b.Expires = limit
	}
	adopted := t.Extend(b)
	if adopted {
		t.received.Add(1)
	}
	return adopted, nil
}

// Extend adds b unless a ban of its prefix lasts as long or longer, and
// reports whether it did: the union of two nodes' bans, each prefix
// banned until the later of its expiries.
func (t *Table) Extend(b Ban) bool {
	if !b.Prefix.IsValid() {
		return false
	}
	b.Prefix = canonical(b.Prefix)
	extended := false
	t.change(func(m map[netip.Prefix]Ban) {
		if old, ok := m[b.Prefix]; !ok || old.Expires.Before(b.Expires) {
			m[b.Prefix], extended = b, true
		}
	})
	return extended
}

// exempt reports whether Config.Exempt spares an address of p, an earned
// ban's prefix: its first address, or for IPv6 the loopback address ::1,
// which the /64 ::/64 holds although its first address is not loopback.
func (t *Table) exempt(p netip.Prefix) bool {
	return t.cfg.Exempt != nil && (t.cfg.Exempt(p.Addr()) || p.Contains(netip.IPv6Loopback()) && t.cfg.Exempt(netip.IPv6Loopback()))
}

// ErrBadPrefix is returned for a ban of something that is no network.
var ErrBadPrefix = errors.New("bans: not a valid address or network")

// Ban adds b, replacing any ban of the same prefix. The prefix is masked
// and IPv4-mapped IPv6 addresses read as IPv4.
func (t *Table) Ban(b Ban) error {
	if !b.Prefix.IsValid() {
		return ErrBadPrefix
	}
	b.Prefix = canonical(b.Prefix)
	t.change(func(m map[netip.Prefix]Ban) { m[b.Prefix] = b })
	return nil
}

// Unban removes the ban of p and reports whether there was one.
func (t *Table) Unban(p netip.Prefix) bool {
	p = canonical(p)
	found := false
	t.change(func(m map[netip.Prefix]Ban) {
		_, found = m[p]
		delete(m, p)
	})
	return found
}

// ParsePrefix reads "ip" or "ip/bits" as a network in the form bans are
// kept in: masked, IPv4-mapped IPv6 as IPv4.
func ParsePrefix(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return canonical(p), nil
	}
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return netip.Prefix{}, fmt.Errorf("%q is not an address or network (ip or ip/bits)", v)
}

func canonical(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// change applies fn to a copy of the bans and publishes it.
func (t *Table) change(fn func(map[netip.Prefix]Ban)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := map[netip.Prefix]Ban{}
	if s := t.set.Load(); s != nil {
		m = maps.Clone(s.bans)
	}
	fn(m)
	t.publish(m)
	t.dirty = true
}

// publish swaps in the set of m; the caller holds mu.
func (t *Table) publish(m map[netip.Prefix]Ban) {
	if len(m) == 0 {
		t.set.Store(nil)
		return
	}
	s := &set{bans: m, expires: make(map[key]int64, len(m))}
	for p, b := range m {
		s.expires[keyOf(p.Addr(), p.Bits())] = b.Expires.UnixNano()
		s.mark(p)
		if p.Addr().Is4() {
			s.bits4 = append(s.bits4, p.Bits())
		} else {
			s.bits6 = append(s.bits6, p.Bits())
		}
	}
	for _, bits := range []*[]int{&s.bits4, &s.bits6} {
		slices.Sort(*bits)
		*bits = slices.Compact(*bits)
	}
	t.set.Store(s)
}

// List returns the bans in force at now, by prefix.
func (t *Table) List(now time.Time) []Ban {
	s := t.set.Load()
	if s == nil {
		return []Ban{}
	}
	out := make([]Ban, 0, len(s.bans))
	for _, b := range s.bans {
		if now.Before(b.Expires) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Ban) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

// Active is the number of bans held, expired ones included until the next
// sweep.
func (t *Table) Active() int {
	if s := t.set.Load(); s != nil {
		return len(s.bans)
	}
	return 0
}

// Earned is how many bans clients have earned since the start.
func (t *Table) Earned() uint64 { return t.earned.Load() }

// Received is how many bans earned on other nodes were adopted here since
// the start (see Adopt).
func (t *Table) Received() uint64 { return t.received.Load() }

// Run drops expired bans and saves changes every second until ctx is
// done, then saves once more.
func (t *Table) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.save()
			return
		case now := <-tick.C:
			t.expire(now)
			t.save()
		}
	}
}

// expire drops the bans over at now.
func (t *Table) expire(now time.Time) {
	s := t.set.Load()
	if s == nil {
		return
	}
	over := false
	for _, b := range s.bans {
		over = over || !now.Before(b.Expires)
	}
	if !over {
		return
	}
	t.change(func(m map[netip.Prefix]Ban) {
		maps.DeleteFunc(m, func(_ netip.Prefix, b Ban) bool { return !now.Before(b.Expires) })
	})
}

// save writes the bans to the ban file if they changed since the last
// save. A failure is logged once, not every second, and retried.
func (t *Table) save() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.path == "" || !t.dirty {
		return
	}
	if err := t.write(); err != nil {
		if err.Error() != t.saveErr {
			t.cfg.Logger.Error("bans not saved; retrying every second", "err", err)
			t.saveErr = err.Error()
		}
		return
	}
	t.dirty, t.saveErr = false, ""
}

// write saves the bans as a JSON array (see atomicfile).
func (t *Table) write() error {
	var bans []Ban
	if s := t.set.Load(); s != nil {
		bans = slices.Collect(maps.Values(s.bans))
	}
	data, err := json.MarshalIndent(bans, "", "\t")
	if err != nil {
		return fmt.Errorf("bans %s: %w", t.path, err)
	}
	return atomicfile.WriteFile(t.path, append(data, '\n'), 0o600)
}

// Restore adds the bans saved at path, which Run saves them to from now
// on: a missing file holds none, expired bans are dropped, and a file
// that does not read as bans is an error (nothing is saved over it).
func (t *Table) Restore(path string, now time.Time) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bans: %w", err)
	}
	var bans []Ban
	if len(data) > 0 {
		if err := json.Unmarshal(data, &bans); err != nil {
			return fmt.Errorf("bans %s: %w", path, err)
		}
	}
	restored := 0
	t.change(func(m map[netip.Prefix]Ban) {
		for _, b := range bans {
			if b.Prefix.IsValid() && now.Before(b.Expires) {
				b.Prefix = canonical(b.Prefix)
				m[b.Prefix] = b
				restored++
			}
		}
	})
	t.mu.Lock()
	t.path = path
	t.mu.Unlock()
	t.cfg.Logger.Info("bans restored", "path", path, "bans", restored)
	return nil
}
