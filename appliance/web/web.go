// Package web serves the box's pages and JSON API (box step of the data
// path): the front panel mirrored, the rotation calendar, the custody log
// and its exports, backup and drill history, WAL lag charts, SMART per drive
// and Prometheus metrics.
package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// Box is what the pages need from the appliance.
type Box interface {
	// Status returns the current status document.
	Status() status.Status
	// History returns the lag samples at or after since, oldest first.
	History(since time.Time) []status.Sample
	// Custody returns the whole custody log, oldest first. The pages
	// verify its chain with Config.Sealer.
	Custody() ([]rotation.Entry, error)
	// Act performs an action. Its error is shown to the person who asked,
	// so it says in plain words what is wrong.
	Act(ctx context.Context, a Action) error
	// Bundle writes the diagnostic bundle (a tar.gz of the status
	// document, logs and settings without secrets) to w.
	Bundle(ctx context.Context, w io.Writer) error
}

// Simulator is a set of drives the page can plug and unplug; only the
// demo has one.
type Simulator interface {
	SimDrives() []SimDrive
	Plug(name string) error
	Unplug(name string) error
}

// SimDrive is one simulated drive as the demo's page shows it.
type SimDrive struct {
	Name    string `json:"name"`
	Plugged bool   `json:"plugged"`
}

// Action is something a person asks the box to do.
type Action struct {
	// Name is one of the Act constants.
	Name string `json:"name"`
	// Arg is the action's argument: hours for "consent", a generation
	// for "enroll"; empty otherwise.
	Arg string `json:"arg,omitempty"`
	// By is who asked; By.String() is what custody and event logs show.
	By Caller `json:"by"`
}

// Actions the pages and API offer. The web package itself handles
// "plug" and "unplug" (through the Simulator) and "bundle" (through
// Box.Bundle); the others go to Box.Act.
const (
	ActBackup      = "backup"      // take a base backup onto the drive in the box
	ActDrill       = "drill"       // run a restore drill; Arg is an optional RFC 3339 moment to restore to
	ActAcknowledge = "acknowledge" // silence the current condition's sound
	ActEject       = "eject"       // make the drive in the box safe to remove
	ActConsent     = "consent"     // open the remote-support window for Arg hours
	ActEnroll      = "enroll"      // enroll the unknown drive in the box
	ActBundle      = "bundle"      // download the diagnostic bundle
	ActPlug        = "plug"        // demo: plug simulated drive Arg
	ActUnplug      = "unplug"      // demo: unplug simulated drive Arg
)

// Config sets up a Server.
type Config struct {
	Box Box
	// Sealer checks the custody log's seals; nil checks hashes only.
	Sealer chain.Sealer
	// StateDir holds the LAN password's hash (file "web-password") and
	// the LAN pages' certificate (see LoadCert).
	StateDir string
	// Hostname names the box in a certificate made at this start; empty
	// means the machine's hostname.
	Hostname string
	// Audit receives one record per request. Required.
	Audit *audit.Log
	// Roles grants tailnet callers their roles.
	Roles Roles
	// WhoIs identifies a tailnet caller from a request's RemoteAddr;
	// nil makes every tailnet request refused.
	WhoIs func(ctx context.Context, remoteAddr string) (Caller, error)
	// Sim, when not nil, adds plug and unplug controls (the demo).
	Sim Simulator
	// Practice names the practice on pages and custody exports.
	Practice string
	// Location is the practice's time zone for pages; nil means Local.
	Location *time.Location
	// OpenMetrics serves /metrics on the LAN without a login, for a
	// Prometheus server on the practice's network; false requires a
	// login there too. On the tailnet /metrics needs a role.
	OpenMetrics bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives operational messages; nil discards them. The setup
	// code is written to it while no password is set.
	Log *slog.Logger
	// Hosts lists the names and addresses the box answers to besides
	// localhost and loopback addresses: its host name, NAME.local, its
	// LAN addresses, its tailnet names and addresses. A request naming
	// another host is refused (DNS rebinding). It is called again, at most
	// every ten seconds, when a request names a host it did not list; nil
	// means loopback only.
	Hosts func() []string
	// ShowSetupCode shows the one-time setup code to someone at the box
	// (cmd/clinicbox writes it to the console); nil shows it in Log only.
	// It is called when the box starts without a password and after the
	// button clears it.
	ShowSetupCode func(code string)
}

// Server serves the pages and API. Make one with New.
type Server struct {
	cfg      Config
	now      func() time.Time
	loc      *time.Location
	log      *slog.Logger
	key      []byte // signs CSRF tokens; new at every start
	password *passwordFile
	// setupGate arms the first-run setup of the password.
	setupGate setupGate
	hosts     hostNames
	sessions  *sessions
	tries     *tries
	noise     noise
	reads     reads
	metrics   http.Handler
	cert      *Cert
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Box == nil:
		return nil, errors.New("web: config: Box is required")
	case cfg.Audit == nil:
		return nil, errors.New("web: config: Audit is required")
	case cfg.StateDir == "":
		return nil, errors.New("web: config: StateDir is required")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("web: state dir: %w", err)
	}
	s := &Server{cfg: cfg, now: cfg.Now, loc: cfg.Location, log: cfg.Log, key: make([]byte, 32)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	rand.Read(s.key)
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	names, ips := CertNames(host)
	var err error
	if s.cert, err = LoadCert(cfg.StateDir, names, ips, s.now()); err != nil {
		return nil, err
	}
	s.password = &passwordFile{path: passwordPath(cfg.StateDir)}
	s.hosts = hostNames{list: cfg.Hosts, now: s.now}
	s.sessions = newSessions(s.now, s.password.identity)
	s.tries = newTries(s.now)
	s.noise = noise{now: s.now, flush: s.flushNoise}
	s.metrics = newMetrics(cfg.Box, s.now)
	if !s.password.isSet() {
		s.newCode()
	}
	return s, nil
}

// LAN returns the handler for the practice's network: a login with the
// box password, sessions in a cookie, CSRF checks on every POST. It
// serves HTTPS only (see SplitTLS and Cert): a plain HTTP request is
// redirected to HTTPS and gets nothing else.
func (s *Server) LAN() http.Handler { return secured(s.handler(lanMode), true) }

// Tailnet returns the handler for the tailnet listener: callers are
// identified with WhoIs and given roles; support actions need consent.
// It serves plain HTTP inside WireGuard as well as HTTPS (see
// cmd/clinicbox's tailnet pages).
func (s *Server) Tailnet() http.Handler { return secured(s.handler(tailnetMode), false) }

// Cert is the LAN pages' certificate, made on the first start.
func (s *Server) Cert() *Cert { return s.cert }
