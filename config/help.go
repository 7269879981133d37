package config

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// The sections -h and the man page group settings under, in order.
var sections = []struct{ name, title string }{
	{"listen", "Listening"},
	{"tracker", "Tracker"},
	{"access", "Access"},
	{"limits", "Limits"},
	{"snapshot", "Snapshot"},
	{"admin", "Admin API"},
	{"cluster", "Cluster"},
	{"websocket", "WebSocket (WebTorrent)"},
	{"tls", "TLS"},
	{"log", "Logging"},
}

// limitKeys are tracker.* settings that bound what a client or the
// machine may use; -h lists them under Limits.
var limitKeys = map[string]bool{
	"tracker.max_torrents": true, "tracker.max_peers": true,
	"tracker.rate_limit": true, "tracker.rate_burst": true,
}

// sectionOf names the section a directive is listed in.
func sectionOf(key string) string {
	if limitKeys[key] || strings.HasPrefix(key, "tracker.http_") || strings.HasPrefix(key, "tracker.ban_") {
		return "limits"
	}
	prefix, _, _ := strings.Cut(key, ".")
	return prefix
}

// machineKeys are settings whose default is computed from this machine
// (memory, cores): -h prints the rule and the figure here beside it, the
// man page only the rule.
var machineKeys = map[string]bool{
	"tracker.max_torrents": true, "tracker.max_peers": true, "websocket.max_connections": true,
	"websocket.max_peers": true,
}

// opentrackerFlag is one of opentracker's short flags, which herald reads
// with the same meaning.
type opentrackerFlag struct{ name, arg, usage string }

// opentrackerFlags lists them in the order -h prints them; ParseArgs
// defines each.
var opentrackerFlags = []opentrackerFlag{
	{"f", "file", "read a config file (opentracker format; repeatable, applied in order)"},
	{"i", "ip", "bind this address for the -p and -P flags that follow (default ::, dual stack)"},
	{"p", "port", "serve HTTP on this port at the -i address (repeatable)"},
	{"P", "port", "serve UDP on this port at the -i address (repeatable)"},
	{"A", "ip[/bits]", "bless a network: it may read stats and is a trusted proxy (repeatable)"},
	{"w", "file", "same as config directive access.whitelist"},
	{"b", "file", "same as config directive access.blacklist"},
	{"r", "url", "same as config directive tracker.redirect_url"},
	{"d", "dir", "same as config directive tracker.rootdir"},
	{"u", "user", "same as config directive tracker.user"},
	{"l", "file", "import an opentracker statedump (completed counts) at start"},
	{"v", "", "print the version and exit (also -version, --version)"},
}

// usageLine is the first line of -h and of the man page's synopsis.
const usageLine = "herald [-f file] [-i ip] [-p port] [-P port] [--setting value ...]"

// defaultText is how a directive's default reads: "" when it has none to
// show; here says whether the figure computed on this machine may be shown.
func defaultText(d *directive, s *Settings, here bool) string {
	if d.def == nil {
		return ""
	}
	if machineKeys[d.key] {
		if !here {
			return ""
		}
		return "here " + d.def(s)
	}
	return d.def(s)
}

// writeHelp prints -h: the opentracker flags, then every setting by
// section, each with its flag, its config directive and its default.
func writeHelp(out io.Writer, s *Settings) {
	fmt.Fprintf(out, "Usage: %s\n\n", usageLine)
	fmt.Fprintf(out, "With no flags herald serves HTTP and UDP on %s. Flags apply in order; each\n", DefaultListen)
	fmt.Fprintf(out, "setting is a config file directive (-f) and a flag (-flag value, --flag=value;\n")
	fmt.Fprintf(out, "a true/false setting alone means true).\n\nopentracker's flags:\n")
	for _, f := range opentrackerFlags {
		fmt.Fprintf(out, "  -%-20s %s\n", strings.TrimSpace(f.name+" "+f.arg), f.usage)
	}
	for _, sec := range sections {
		fmt.Fprintf(out, "\n%s:\n", sec.title)
		for i := range directives {
			d := &directives[i]
			if d.flag == "" || sectionOf(d.key) != sec.name {
				continue
			}
			fmt.Fprintf(out, "  --%s %s   [%s]\n", d.flag, d.arg, d.key)
			line := "      " + d.usage
			if def := defaultText(d, s, true); def != "" {
				line += " (default " + def + ")"
			}
			fmt.Fprintln(out, line)
		}
	}
}

// WriteManPage writes herald(8) in roff from the same table as -h, with
// the defaults in s (herald's, as -h shows them) except those computed
// from the machine.
func WriteManPage(out io.Writer, version string, s *Settings) {
	esc := func(v string) string {
		v = strings.ReplaceAll(v, `\`, `\e`)
		v = strings.ReplaceAll(v, "-", `\-`)
		if strings.HasPrefix(v, ".") || strings.HasPrefix(v, "'") {
			v = `\&` + v
		}
		return v
	}
	fmt.Fprintf(out, ".TH HERALD 8 \"\" \"%s\" \"System Manager's Manual\"\n", esc(version))
	fmt.Fprintf(out, ".SH NAME\nherald \\- BitTorrent tracker (HTTP, UDP, WebTorrent), in RAM\n")
	fmt.Fprintf(out, ".SH SYNOPSIS\n.B %s\n", esc(usageLine))
	fmt.Fprintf(out, ".SH DESCRIPTION\n")
	fmt.Fprintf(out, "herald answers BitTorrent announces and scrapes over HTTP (BEP 3, 23, 7, 48), UDP (BEP 15, 41)\n")
	fmt.Fprintf(out, "and WebSocket (WebTorrent), keeping every swarm in memory. It reads opentracker's flags and\n")
	fmt.Fprintf(out, "config file. With no flags it serves HTTP and UDP on %s. Every setting below is a config\n", esc(DefaultListen))
	fmt.Fprintf(out, "file directive (\\fIkey value\\fR, one a line) and a flag; flags apply in order.\n")
	fmt.Fprintf(out, ".SH \"OPENTRACKER FLAGS\"\n")
	for _, f := range opentrackerFlags {
		fmt.Fprintf(out, ".TP\n.B \\-%s", f.name)
		if f.arg != "" {
			fmt.Fprintf(out, " \\fI%s\\fR", esc(f.arg))
		}
		fmt.Fprintf(out, "\n%s\n", esc(f.usage))
	}
	for _, sec := range sections {
		fmt.Fprintf(out, ".SH \"%s\"\n", strings.ToUpper(esc(sec.title)))
		for i := range directives {
			d := &directives[i]
			if d.flag == "" || sectionOf(d.key) != sec.name {
				continue
			}
			fmt.Fprintf(out, ".TP\n.BR %s \" \" \\fI%s\\fR \", \" \\-\\-%s\n", esc(d.key), esc(d.arg), esc(d.flag))
			text := d.usage
			if def := defaultText(d, s, false); def != "" {
				text += " (default " + def + ")"
			}
			fmt.Fprintf(out, "%s\n", esc(text))
		}
	}
	fmt.Fprintf(out, ".SH SIGNALS\n.TP\n.B SIGINT, SIGTERM\nsave the state file and stop\n")
	fmt.Fprintf(out, ".TP\n.B SIGHUP\nreload the access list and the TLS certificate files\n")
	fmt.Fprintf(out, ".SH FILES\n.TP\n.I /etc/herald/herald.conf\nthe config file of the systemd unit\n")
	fmt.Fprintf(out, ".TP\n.I /var/lib/herald/herald.snapshot\nthe state file of the systemd unit\n")
	fmt.Fprintf(out, ".SH \"SEE ALSO\"\n.BR opentracker (1)\n")
}

// closest returns the candidate nearest to name by edit distance, if it is
// near enough to be a likely typo, for "did you mean".
func closest(name string, candidates []string) (string, bool) {
	best, bestDist := "", len(name)/3+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist || d == bestDist && best == "" && d <= 2 {
			best, bestDist = c, d
		}
	}
	return best, best != ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// durationText prints a duration default without trailing zero units
// (30m, not 30m0s).
func durationText(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, z) {
			s = strings.TrimSuffix(s, z[1:])
		}
	}
	return s
}
