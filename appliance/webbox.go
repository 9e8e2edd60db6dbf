package appliance

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/web"
)

// WebBox is the appliance as the web pages see it.
type WebBox struct{ *Appliance }

var _ web.Box = WebBox{}

// Act performs a page's or remote support's action.
func (w WebBox) Act(ctx context.Context, act web.Action) error {
	return w.Do(ctx, act.Name, act.Arg, act.By.String())
}

// Bundle writes a diagnostic bundle: the status document, the rotation
// state, the custody log and the settings with every secret removed (see
// redactedSettings). No patient data is in any of them.
func (w WebBox) Bundle(ctx context.Context, out io.Writer) error {
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: w.cfg.Now()}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	st, _ := json.MarshalIndent(w.Status(), "", "  ")
	setJSON := redactedSettings(w.set)
	files := []struct {
		name string
		b    []byte
	}{{"status.json", st}, {"settings.json", setJSON}}
	for _, f := range []string{"rotation.json", "custody.jsonl", "box.json"} {
		if b, err := os.ReadFile(w.path(f)); err == nil {
			files = append(files, struct {
				name string
				b    []byte
			}{f, b})
		}
	}
	for _, f := range files {
		if err := add(f.name, f.b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// NewWeb builds the pages for the appliance: the audit log goes next to
// the rest of the box's state. sim, when not nil, lets the page plug and
// unplug simulated drives (the demo). opts set what only the program knows
// (where the setup code is shown, the box's names).
func (a *Appliance) NewWeb(sim web.Simulator, whois func(ctx context.Context, remoteAddr string) (web.Caller, error), opts ...func(*web.Config)) (*web.Server, error) {
	al, err := audit.Open(a.path("audit.jsonl"), a.key.LogKeys())
	if err != nil {
		return nil, err
	}
	for _, p := range al.Problems() {
		a.event("audit", "The audit log is damaged: "+p)
	}
	a.audit.Store(al)
	var roles web.Roles
	if err := strictJSON(a.set.Support, &roles, "support"); err != nil {
		return nil, err
	}
	cfg := web.Config{Box: WebBox{a}, Sealer: a.key.CustodySealer(), StateDir: a.path("web"), Hostname: a.cfg.Hostname, Audit: al, Roles: roles,
		Location: a.policy.Calendar.Location, Now: a.cfg.Now, Log: a.log, WhoIs: whois, Sim: sim}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := web.New(cfg)
	if err != nil {
		return nil, err
	}
	a.web.Store(srv) // the button resets its password
	return srv, nil
}
