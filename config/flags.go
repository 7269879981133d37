package config

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ParseArgs builds Settings from defaults (Defaults and the components'
// defaults) and the command line. Flags
// apply in order, opentracker's way: -f reads a config file at that point,
// -i sets the address that the following -p (TCP) and -P (UDP) bind. Every
// config file directive is also a long flag (-listen, -interval, ...).
// Help goes to out; ParseArgs returns flag.ErrHelp after printing it.
func ParseArgs(defaults Settings, args []string, out io.Writer) (*Settings, error) {
	s := defaults
	fs := flag.NewFlagSet("herald", flag.ContinueOnError)
	fs.SetOutput(out)
	bindIP := "::"
	argOf := map[string]string{} // flag name -> what its value is, for -h
	listenOn := func(tcp, udp bool) func(string) error {
		return func(v string) error {
			port, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return fmt.Errorf("%q is not a port", v)
			}
			a, _ := netip.ParseAddr(bindIP)
			s.Listens = append(s.Listens, Listen{Addr: netip.AddrPortFrom(a, uint16(port)).String(), TCP: tcp, UDP: udp})
			return nil
		}
	}
	fs.Func("f", "read a config file (opentracker format; repeatable, applied in order)", s.ParseFile)
	fs.Func("i", "bind this address for the -p and -P flags that follow (default ::, dual stack)", func(v string) error {
		a, err := netip.ParseAddr(strings.Trim(v, "[]"))
		if err != nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		bindIP = a.String()
		return nil
	})
	fs.Func("p", "serve HTTP on this port at the -i address (repeatable)", listenOn(true, false))
	fs.Func("P", "serve UDP on this port at the -i address (repeatable)", listenOn(false, true))
	fs.Func("A", "bless a network: it may read stats and is a trusted proxy (repeatable)", func(v string) error {
		p, err := ParsePrefix(v)
		if err != nil {
			return err
		}
		s.StatsNets = append(s.StatsNets, p)
		s.ProxyNets = append(s.ProxyNets, p)
		return nil
	})
	short := []struct{ name, arg, key string }{
		{"w", "file", "access.whitelist"},
		{"b", "file", "access.blacklist"},
		{"r", "url", "tracker.redirect_url"},
		{"d", "dir", "tracker.rootdir"},
		{"u", "user", "tracker.user"},
	}
	for _, sf := range short {
		d := lookup(sf.key)
		argOf[sf.name] = sf.arg
		fs.Func(sf.name, "same as config directive "+sf.key, func(v string) error { return d.set(&s, v) })
	}
	for name, arg := range map[string]string{"f": "file", "i": "ip", "p": "port", "P": "port", "A": "ip[/bits]", "l": "file"} {
		argOf[name] = arg
	}
	fs.Func("l", "import an opentracker statedump (completed counts) at start", func(v string) error { s.Statedump = v; return nil })
	for _, name := range []string{"v", "version"} {
		fs.BoolFunc(name, "print the version and exit", func(string) error { s.ShowVersion = true; return nil })
	}
	for i := range directives {
		d := &directives[i]
		if d.flag == "" {
			continue
		}
		usage := d.usage + " [config: " + d.key + "]"
		if d.def != nil {
			usage += fmt.Sprintf(" (default %s)", d.def(&s))
		}
		argOf[d.flag] = d.arg
		fs.Func(d.flag, usage, func(v string) error { return d.set(&s, v) })
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: herald [flags]\n\nWith no flags herald serves HTTP and UDP on %s. Flags apply in order.\n\n", DefaultListen)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  -%s %s\n    \t%s\n", f.Name, argOf[f.Name], f.Usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}
