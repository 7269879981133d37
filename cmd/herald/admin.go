package main

import (
	"context"
	"encoding"
	"net/netip"
	"net/url"
	"reflect"
	"sync"
	"time"

	"herald/admin"
	"herald/bans"
	"herald/cluster"
	"herald/config"
)

// The admin side of the wiring: automatic bans, the admin API, the FIFOs,
// and the configuration the API shows.

// banConfig is the bans' configuration; with a cluster (node not nil), the
// bans clients earn here go to the other nodes.
func banConfig(s *config.Settings, node *cluster.Node) bans.Config {
	cfg := bans.Config{
		After:            s.BanAfter,
		Duration:         s.BanDuration,
		BadConnectionIDs: s.BanBadConnectionIDs,
		// Loopback is the operator's own tools, which the rate limit
		// spares too.
		Exempt: netip.Addr.IsLoopback,
	}
	if node != nil {
		cfg.OnEarn = node.ShareBan
	}
	return cfg
}

func adminConfig(d *daemon) admin.Config {
	cfg := admin.Config{
		Token:    d.adminToken,
		List:     d.list,
		Bans:     d.bans,
		Settings: effectiveSettings(d.s),
		Logger:   d.log,
	}
	if d.saves != nil {
		cfg.Snapshot = d.saves.save
	}
	if d.node != nil {
		cfg.Publish = d.node.PublishChange
	}
	if d.keys != nil { // a nil *access.Keys in the interface would not be nil
		cfg.Keys, cfg.Ledger = d.keys, d.ledger
	}
	return cfg
}

// redactedFields are the settings whose values are secrets: the admin API
// shows that they are set, never what they are.
var redactedFields = map[string]bool{"Password": true, "Token": true}

// effectiveSettings is s as the admin API shows it: every field by its Go
// name, durations and addresses as text, secrets and the credentials in
// NATS URLs replaced by "redacted", functions and loggers left out.
func effectiveSettings(s *config.Settings) any { return settingValue(reflect.ValueOf(*s)) }

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

func settingValue(v reflect.Value) any {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		return v.Interface().(time.Duration).String()
	case v.Type().Implements(textMarshaler):
		text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil
		}
		return string(text)
	}
	switch v.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			switch {
			case !f.IsExported():
			case fv.Kind() == reflect.Func || fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Interface || fv.Kind() == reflect.Chan:
			case redactedFields[f.Name] && !fv.IsZero():
				out[f.Name] = "redacted"
			default:
				out[f.Name] = settingValue(fv)
			}
		}
		return out
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = settingValue(v.Index(i))
		}
		return out
	case reflect.String:
		return redactURL(v.String())
	}
	return v.Interface()
}

// redactURL hides the credentials in a URL such as nats://user:pass@host
// or nats://token@host.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.Host == "" {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	} else {
		u.User = url.User("redacted")
	}
	return u.String()
}

// serveAdmin runs the admin API, the FIFO readers and the application of
// other nodes' changes, each as configured, until ctx is done; an API that
// fails stops herald (stop), as a frontend's failure does.
func (d *daemon) serveAdmin(ctx context.Context, wg *sync.WaitGroup, stop context.CancelFunc) {
	if d.adminListener != nil {
		wg.Go(func() {
			if err := d.admin.Serve(ctx, d.adminListener); err != nil {
				d.log.Error("admin API failed", "err", err)
				stop()
			}
		})
	}
	if d.fifoAdd != nil {
		wg.Go(func() { d.admin.ReadFIFO(ctx, d.fifoAdd, cluster.ListAdd) })
	}
	if d.fifoDelete != nil {
		wg.Go(func() { d.admin.ReadFIFO(ctx, d.fifoDelete, cluster.ListRemove) })
	}
	if d.node != nil {
		wg.Go(func() {
			if err := d.node.RunChanges(ctx, d.admin); err != nil {
				d.log.Error("cluster: admin changes not received", "err", err)
			}
		})
	}
}
