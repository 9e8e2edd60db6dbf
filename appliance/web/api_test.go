package web_test

import (
	"archive/tar"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/rotation"
)

func TestPages(t *testing.T) {
	e := newEnv(t)
	c := e.staff()
	tests := []struct {
		path, contentType string
		says              []string
	}{
		{"/", "text/html", []string{
			"Swap the backup drive", `data-light="amber" data-state="slow"`, `class="light red off"`, "two beeps every 30 minutes",
			`data-drive="Father" data-where="offsite"`, "expected next", "November 2026", "Custody log: chain intact (16 entries)",
			`<svg class="chart"`, "WAL lag, last week", "reallocated sectors", "20261121T0100-son", "passed", "Recoverable window",
			"Simulated drives", "Open a support window", `name="csrf"`,
		}},
		{"/custody", "text/html", []string{"Chain intact: 16 entries", "Grandfather was expected, not Son", "/custody/export?month=2026-11&amp;format=csv"}},
		{"/custody/export?month=2026-11&format=html", "text/html", []string{"Backup media custody log, November 2026", "The custody chain verifies", "Riverside Family Practice"}},
		{"/custody/export?month=2026-11&format=csv", "text/csv", []string{"seq,time,drive,generation,event,who,decision,reasons,hash", "wrong drive"}},
		{"/static/style.css", "text/css", []string{"@keyframes blink"}},
		{"/static/app.js", "text/javascript", []string{"/api/status"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := c.get(tt.path)
			if res.code != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), tt.contentType) {
				t.Fatalf("got %d %s; want 200 %s", res.code, res.header.Get("Content-Type"), tt.contentType)
			}
			for _, s := range tt.says {
				if !strings.Contains(res.body, s) {
					t.Errorf("missing %q", s)
				}
			}
			if strings.Contains(res.body, "http://") && tt.contentType == "text/html" && tt.path == "/" {
				t.Errorf("the page refers to an outside address; it must work offline")
			}
		})
	}
	if res := c.get("/custody/export?month=November"); res.code != http.StatusBadRequest {
		t.Errorf("bad month: got %d; want 400", res.code)
	}
}

func TestAPI(t *testing.T) {
	e := newEnv(t)
	c := e.staff()
	st := decode[status.Status](t, c.get("/api/status").body)
	if st.Severity != status.Attention || st.Expected != "Father" || len(st.Drives) != 3 || !st.Time.Equal(start) {
		t.Errorf("status: got severity %v, expected %q, %d drives, time %v; want attention, Father, 3, %v", st.Severity, st.Expected, len(st.Drives), st.Time, start)
	}
	history := []struct {
		since string
		code  int
		n     int
	}{
		{"", 200, 24*60 + 1},
		{"1h", 200, 61},
		{start.Add(-2 * time.Hour).Format(time.RFC3339), 200, 121},
		{"168h", 200, 24*60 + 6*24*6},
		{"yesterday", 400, 0},
	}
	for _, tt := range history {
		t.Run("history "+tt.since, func(t *testing.T) {
			res := c.get("/api/history?since=" + tt.since)
			if res.code != tt.code {
				t.Fatalf("got %d %s; want %d", res.code, res.body, tt.code)
			}
			if tt.code != 200 {
				return
			}
			h := decode[struct{ Samples []status.Sample }](t, res.body)
			// The week before the last day is kept at ten-minute steps.
			if d := len(h.Samples) - tt.n; d < -2 || d > 2 {
				t.Errorf("got %d samples; want about %d", len(h.Samples), tt.n)
			}
		})
	}
	cu := decode[struct {
		Chain   struct{ Intact bool }
		Entries []rotation.Entry
	}](t, c.get("/api/custody").body)
	if !cu.Chain.Intact || len(cu.Entries) != 16 {
		t.Errorf("custody: got intact=%v with %d entries; want intact with 16", cu.Chain.Intact, len(cu.Entries))
	}
	au := decode[struct{ Records []struct{ Action string } }](t, c.get("/api/audit?n=2").body)
	if len(au.Records) != 2 || au.Records[1].Action != "GET /api/custody" {
		t.Errorf("audit: got %+v; want the last two records ending with GET /api/custody", au.Records)
	}
	res := c.act("plug", "Father")
	if res.code != http.StatusConflict || !strings.Contains(res.body, "already holds Son") {
		t.Errorf("plug into a full box: got %d %s; want 409 naming Son", res.code, res.body)
	}
	for _, step := range []struct{ act, arg, where string }{{"unplug", "Son", "offsite"}, {"plug", "Father", "in box"}} {
		if res := c.act(step.act, step.arg); res.code != http.StatusOK {
			t.Fatalf("%s %s: got %d %s; want 200", step.act, step.arg, res.code, res.body)
		}
	}
	sim := decode[struct{ Drives []web.SimDrive }](t, c.get("/api/sim").body)
	if len(sim.Drives) != 3 || !sim.Drives[1].Plugged || sim.Drives[0].Plugged {
		t.Errorf("sim: got %+v; want Father plugged, Son not", sim.Drives)
	}
	if st := e.box.Status(); st.InBox == nil || st.InBox.Generation != "Father" || st.Severity != status.Busy {
		t.Errorf("after the swap: got %+v severity %v; want Father in the box, busy", st.InBox, st.Severity)
	}
}

func TestBundle(t *testing.T) {
	e := newEnv(t)
	c := e.staff()
	res := c.get("/api/bundle")
	if res.code != http.StatusOK || res.header.Get("Content-Type") != "application/gzip" || !strings.Contains(res.header.Get("Content-Disposition"), "clinicbox-20261121-140000.tar.gz") {
		t.Fatalf("got %d %v; want 200 with a named tar.gz", res.code, res.header)
	}
	zr, err := gzip.NewReader(strings.NewReader(res.body))
	if err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(zr).Next()
	if err != nil || h.Name != "status.json" {
		t.Errorf("got %v, %v; want status.json", h, err)
	}
	if rec := e.lastAudit(); rec.Action != "bundle" || !rec.Allowed {
		t.Errorf("audit: got %+v; want an allowed bundle", rec)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	if res := e.lanClient().get("/metrics"); res.code != http.StatusUnauthorized {
		t.Errorf("LAN without login: got %d; want 401", res.code)
	}
	res := e.staff().get("/metrics")
	for _, s := range []string{
		"clinicbox_severity 2",
		`clinicbox_condition{name="swap due",severity="attention"} 1`,
		`clinicbox_wal_lag_seconds{copy="local"} 1.2`,
		`clinicbox_wal_lag_seconds{copy="offsite:vault"} 14`,
		`clinicbox_drive_health{drive="d-e07b-grandfather",generation="Grandfather"} 1`,
		`clinicbox_slot_retained_bytes{slot="clinicbox_son"} 5.0331648e+07`,
		`clinicbox_last_backup_age_seconds{where="local"} 7200`,
		`clinicbox_last_backup_age_seconds{where="offsite"} 93600`,
		"clinicbox_swap_due 1",
		"clinicbox_last_drill_ok 1",
		`clinicbox_drive_last_drill_ok{drive="d-5a1e-son"} 1`,
		`clinicbox_drive_last_drill_age_seconds{drive="d-5a1e-son"} 259200`,
		"clinicbox_support_consent_open 0",
	} {
		if !strings.Contains(res.body, s) {
			t.Errorf("missing %q", s)
		}
	}
	if strings.Contains(res.body, "go_goroutines") {
		t.Errorf("got the process's own metrics; want the box's only (a private registry)")
	}
	open := newEnv(t, func(c *web.Config) { c.OpenMetrics = true })
	open.staff() // the password is set, nobody is logged in below
	if res := open.lanClient().get("/metrics"); res.code != http.StatusOK {
		t.Errorf("open metrics without login: got %d; want 200", res.code)
	}
}

// tampered is a box whose custody log had its fifth entry edited.
type tampered struct{ web.Box }

func (b tampered) Custody() ([]rotation.Entry, error) {
	es, err := b.Box.Custody()
	es[4].Who = "nobody"
	return es, err
}

func TestCustodyChainBroken(t *testing.T) {
	e := newEnv(t)
	srv, err := web.New(web.Config{Box: tampered{e.box}, Sealer: e.box.Sealer(), StateDir: e.state, Audit: e.audit, Now: e.clock.Now, ShowSetupCode: e.showCode})
	if err != nil {
		t.Fatal(err)
	}
	e.lan.Config.Handler = srv.LAN()
	c := e.staff()
	for _, path := range []string{"/", "/custody"} {
		if res := c.get(path); !strings.Contains(res.body, "hain broken at entry 5") {
			t.Errorf("%s: missing \"chain broken at entry 5\"", path)
		}
	}
	cu := decode[struct {
		Chain struct {
			Intact   bool
			BrokenAt int `json:"broken_at"`
		}
	}](t, c.get("/api/custody").body)
	if cu.Chain.Intact || cu.Chain.BrokenAt != 5 {
		t.Errorf("got %+v; want broken at 5", cu.Chain)
	}
}

func TestEveryRequestAudited(t *testing.T) {
	e := newEnv(t)
	c := e.staff() // POST /setup, GET /api/session
	c.get("/")
	c.get("/static/style.css")
	c.get("/api/status")
	c.get("/nowhere")
	e.peer("127.0.0.4").get("/api/status")
	recs, err := e.audit.Tail(100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Action)
	}
	want := []string{"set password", "GET /api/session", "GET /", "GET /api/status", "GET /nowhere", "GET /api/status"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q; want %q", got, want)
	}
	if last := recs[len(recs)-1]; last.Allowed || last.Login != "stranger@example.com" {
		t.Errorf("got %+v; want the stranger refused, with its login", last)
	}
}
