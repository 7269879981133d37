package config

import (
	"errors"
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
	// Errors are returned, help is written by writeHelp: the flag package
	// prints neither.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	bindIP := "::"
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
	set := map[string]func(string) error{
		"f": s.ParseFile,
		"i": func(v string) error {
			a, err := netip.ParseAddr(strings.Trim(v, "[]"))
			if err != nil {
				return fmt.Errorf("%q is not an IP address", v)
			}
			bindIP = a.String()
			return nil
		},
		"p": listenOn(true, false),
		"P": listenOn(false, true),
		"A": func(v string) error {
			p, err := ParsePrefix(v)
			if err != nil {
				return err
			}
			s.StatsNets = append(s.StatsNets, p)
			s.ProxyNets = append(s.ProxyNets, p)
			return nil
		},
		"l": func(v string) error { s.Statedump = v; return nil },
	}
	for name, key := range map[string]string{"w": "access.whitelist", "b": "access.blacklist",
		"r": "tracker.redirect_url", "d": "tracker.rootdir", "u": "tracker.user"} {
		d := lookup(key)
		set[name] = func(v string) error { return d.set(&s, v) }
	}
	for _, f := range opentrackerFlags {
		if f.name == "v" {
			continue
		}
		fs.Func(f.name, f.usage, set[f.name])
	}
	for _, name := range []string{"v", "version"} {
		fs.BoolFunc(name, "print the version and exit", func(string) error { s.ShowVersion = true; return nil })
	}
	for i := range directives {
		d := &directives[i]
		if d.flag == "" {
			continue
		}
		apply := func(v string) error { return d.set(&s, v) }
		if d.arg == "bool" {
			// -log-json alone means true, as GNU tools read a bare switch.
			fs.Var(boolFlag(apply), d.flag, d.usage)
			continue
		}
		fs.Func(d.flag, d.usage, apply)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeHelp(out, &s)
			return nil, err
		}
		return nil, explainFlagError(err, fs)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags take -name value; herald -h lists them)", fs.Arg(0))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// boolFlag is a true/false setting as a flag: given alone it means true.
type boolFlag func(string) error

func (f boolFlag) String() string     { return "" }
func (f boolFlag) Set(v string) error { return f(v) }
func (f boolFlag) IsBoolFlag() bool   { return true }

// explainFlagError turns the flag package's error into one line that says
// what is wrong, suggests the flag the user probably meant, and points to
// -h instead of printing the whole usage.
func explainFlagError(err error, fs *flag.FlagSet) error {
	const hint = "; herald -h lists every setting"
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if near, ok := closest(name, names); ok {
			return fmt.Errorf("unknown flag -%s (did you mean --%s?)%s", name, near, hint)
		}
		return fmt.Errorf("unknown flag -%s%s", name, hint)
	}
	return errors.New(msg + hint)
}
