package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeGokrazy answers like gokrazy's web interface (status.go, statuslog.go
// and authenticated.go in github.com/gokrazy/gokrazy): basic auth as user
// gokrazy, the overview as JSON when asked for it, a service's log as
// lines.
func fakeGokrazy(t *testing.T, password string, logLines []string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept"), "application/json") {
			http.Error(w, "html", http.StatusNotAcceptable)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"Hostname": "clinicbox",
			"Services": []map[string]any{
				{"Stopped": false, "StartTime": time.Unix(1e9, 0), "Pid": 70, "Path": "/gokrazy/dhcp", "Args": []string{"/gokrazy/dhcp"}},
				{"Stopped": false, "StartTime": time.Unix(1e9, 0), "Pid": 78, "Path": clinicboxPath, "Args": []string{clinicboxPath, "-state=/perm/clinicbox"}},
			},
		})
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("path") != clinicboxPath || r.FormValue("stream") != "stdout" {
			http.Error(w, "service not found", http.StatusNotFound)
			return
		}
		for _, l := range logLines {
			fmt.Fprintln(w, l)
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, ok := r.BasicAuth()
		if !ok || user != "gokrazy" || pw != password {
			http.Error(w, "invalid username/password", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWebUI(t *testing.T) {
	ctx := context.Background()
	srv := fakeGokrazy(t, "pw", []string{"2026/11/22 boot", "clinicbox: starting", "later"})
	ui := &webUI{Base: srv.URL, Password: "pw"}
	svc, err := ui.Service(ctx, clinicboxPath)
	if err != nil || svc.Pid != 78 || svc.Stopped || len(svc.Args) != 2 {
		t.Errorf("Service: got %+v, %v; want pid 78 running with 2 args", svc, err)
	}
	if _, err := ui.Service(ctx, "/user/nope"); err == nil {
		t.Errorf("Service of a missing path: got no error")
	}
	line, err := ui.WaitLog(ctx, clinicboxPath, "stdout", "starting")
	if err != nil || line != "clinicbox: starting" {
		t.Errorf("WaitLog: got %q, %v; want the starting line", line, err)
	}
	if _, err := ui.WaitLog(ctx, clinicboxPath, "stdout", "never"); err == nil || !strings.Contains(err.Error(), "log ended") {
		t.Errorf("WaitLog for a missing line: got %v; want log ended", err)
	}
	if _, err := ui.WaitLog(ctx, clinicboxPath, "stderr", "x"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("WaitLog of an unknown stream: got %v; want 404", err)
	}
	lines, err := ui.RecentLog(ctx, clinicboxPath, "stdout")
	if err != nil || len(lines) != 3 || lines[2] != "later" {
		t.Errorf("RecentLog: got %q, %v; want the 3 lines", lines, err)
	}
	bad := &webUI{Base: srv.URL, Password: "wrong"}
	if _, err := bad.Overview(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Overview with a wrong password: got %v; want 401", err)
	}
}
