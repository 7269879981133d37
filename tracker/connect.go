package tracker

// ConnectWindow bounds the UDP connects one socket answers per second:
// its share of Config.ConnectRate. A connect comes from an address that
// is not yet proven, so it must not charge that address's rate limit (a
// flood spoofed from a victim's address would lock the victim out, issue
// 14); it is bounded for all clients at once instead. Each socket's
// reader owns one window, so the check takes no lock. It is not safe for
// concurrent use.
type ConnectWindow struct {
	perSecond uint64 // 0: no bound
	second    int64
	left      uint64
}

// ConnectWindow returns the window of one of sockets sockets.
func (t *Tracker) ConnectWindow(sockets int) *ConnectWindow {
	if t.cfg.ConnectRate == 0 {
		return &ConnectWindow{}
	}
	return &ConnectWindow{perSecond: max(1, uint64(t.cfg.ConnectRate)/uint64(max(sockets, 1)))}
}

// Admit counts a connect at Unix time now (seconds) and reports whether it
// is within this second's share.
func (w *ConnectWindow) Admit(now int64) bool {
	if w.perSecond == 0 {
		return true
	}
	if now != w.second {
		w.second, w.left = now, w.perSecond
	}
	if w.left == 0 {
		return false
	}
	w.left--
	return true
}
