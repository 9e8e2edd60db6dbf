package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// webUI is a client of gokrazy's web interface on the box. It speaks the
// interface's JSON form (Accept: application/json) with the update
// password as HTTP basic authentication, user "gokrazy".
type webUI struct {
	// Base is the interface's URL, e.g. http://127.0.0.1:8080.
	Base     string
	Password string
	// Client is the HTTP client; nil means http.DefaultClient.
	Client *http.Client
}

// serviceStatus is one supervised service as gokrazy reports it.
type serviceStatus struct {
	Path      string
	Args      []string
	Pid       int
	Stopped   bool
	StartTime time.Time
}

// overview is gokrazy's overview page in its JSON form (the part used here).
type overview struct {
	Hostname string
	Kernel   string
	PermDev  string
	// PermTotal is the size of /perm in bytes; 0 means it is not mounted.
	PermTotal int64
	// BuildTimestamp says which build runs; an update changes it.
	BuildTimestamp string
	Services       []serviceStatus
}

func (w *webUI) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	u := strings.TrimSuffix(w.Base, "/") + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("gokrazy", w.Password)
	req.Header.Set("Accept", "application/json")
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("webui: get %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("webui: get %s: %s", path, resp.Status)
	}
	return resp, nil
}

// Overview returns the box's overview with its services.
func (w *webUI) Overview(ctx context.Context) (*overview, error) {
	resp, err := w.get(ctx, "/", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var o overview
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		return nil, fmt.Errorf("webui: overview: %w", err)
	}
	return &o, nil
}

// Service returns the status of the service whose binary is path, e.g.
// /user/clinicbox.
func (w *webUI) Service(ctx context.Context, path string) (*serviceStatus, error) {
	o, err := w.Overview(ctx)
	if err != nil {
		return nil, err
	}
	for i := range o.Services {
		if o.Services[i].Path == path {
			return &o.Services[i], nil
		}
	}
	return nil, fmt.Errorf("webui: no service %s", path)
}

// WaitLog reads the service's stream ("stdout" or "stderr"), recent lines
// first, until a line contains one of wants, and returns that line. The
// log stays open until then, so ctx must carry a deadline.
func (w *webUI) WaitLog(ctx context.Context, path, stream string, wants ...string) (string, error) {
	var found string
	err := w.readLog(ctx, path, stream, func(line string) bool {
		for _, want := range wants {
			if strings.Contains(line, want) {
				found = line
				return false
			}
		}
		return true
	})
	if found != "" {
		return found, nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("webui: %s %s: no line with %q: %w", path, stream, wants, ctx.Err())
	}
	return "", fmt.Errorf("webui: %s %s: log ended without %q: %v", path, stream, wants, err)
}

// RecentLog returns the lines of the service's stream that arrive before
// ctx ends (gokrazy sends the last hundred first), for failure reports.
func (w *webUI) RecentLog(ctx context.Context, path, stream string) ([]string, error) {
	var lines []string
	err := w.readLog(ctx, path, stream, func(line string) bool {
		lines = append(lines, line)
		return true
	})
	if ctx.Err() != nil {
		err = nil
	}
	return lines, err
}

// readLog calls f with each line of the service's stream until f returns
// false, the log ends or ctx ends.
func (w *webUI) readLog(ctx context.Context, path, stream string, f func(string) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := w.get(ctx, "/log", url.Values{"path": {path}, "stream": {stream}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if !f(sc.Text()) {
			return nil
		}
	}
	return sc.Err()
}
