package web

import (
	"cmp"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/audit"
)

type mode int

const (
	lanMode mode = iota
	tailnetMode
)

// request is what the gate learned about a request, and what the handler
// tells the audit log about its outcome.
type request struct {
	mode   mode
	caller Caller
	role   string
	// principal is whom CSRF tokens are bound to: the LAN session, or the
	// tailnet identity; empty when nobody is logged in.
	principal string
	// action is what the audit record names; the method and path unless
	// the handler says better.
	action string
	// refused and why, when set by the handler, override the audit
	// record's outcome taken from the status code.
	refused bool
	why     string
	// granted says the request was allowed even if what it asked for
	// then failed.
	granted bool
	// tried says a password or setup code was checked: the record is
	// never summarized as noise.
	tried bool
}

type ctxKey struct{}

func reqOf(r *http.Request) *request { return r.Context().Value(ctxKey{}).(*request) }

// handler builds the routes for one mode. Static assets are served before
// the gate and are not audited: they carry nothing of the box's.
func (s *Server) handler(m mode) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.dashboard)
	mux.HandleFunc("GET /custody", s.custodyPage)
	mux.HandleFunc("GET /custody/export", s.custodyExport)
	mux.HandleFunc("GET /api/session", s.apiSession)
	mux.HandleFunc("GET /api/status", s.apiStatus)
	mux.HandleFunc("GET /api/history", s.apiHistory)
	mux.HandleFunc("GET /api/custody", s.apiCustody)
	mux.HandleFunc("GET /api/audit", s.apiAudit)
	mux.HandleFunc("GET /api/sim", s.apiSim)
	mux.HandleFunc("GET /api/bundle", s.apiBundle)
	mux.HandleFunc("POST /api/actions/{name}", s.apiAction)
	mux.Handle("GET /metrics", s.metrics)
	if m == lanMode {
		mux.HandleFunc("GET /setup", s.setupPage)
		mux.HandleFunc("POST /setup", s.setup)
		mux.HandleFunc("GET /login", s.loginPage)
		mux.HandleFunc("POST /login", s.login)
		mux.HandleFunc("POST /logout", s.logout)
	}
	static, _ := fs.Sub(assets, "assets")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	// Cross-origin POSTs are refused by the browser's own headers
	// (Sec-Fetch-Site, Origin) on top of the CSRF token, inside the gate
	// so that they are audited too.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := reqOf(r)
		q.refused, q.why = true, "a request from another web site"
		s.fail(w, r, http.StatusForbidden, "the box refuses requests made by other web sites")
	}))
	gated := s.gate(m, cop.Handler(mux))
	return s.checkHost(m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/static/") {
			files.ServeHTTP(w, r)
			return
		}
		gated.ServeHTTP(w, r)
	}))
}

// gate identifies the caller, lets through only what their role may see,
// and writes the audit record once the handler is done.
func (s *Server) gate(m mode, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &request{mode: m, action: r.Method + " " + r.URL.Path}
		rec := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() { s.record(q, rec.code) }()
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, q))
		var ok bool
		if m == lanMode {
			ok = s.gateLAN(rec, r, q)
		} else {
			ok = s.gateTailnet(rec, r, q)
		}
		if ok {
			next.ServeHTTP(rec, r)
		}
	})
}

// publicLAN are the LAN paths that need no session.
var publicLAN = map[string]bool{"/setup": true, "/login": true}

func (s *Server) gateLAN(w http.ResponseWriter, r *http.Request, q *request) bool {
	q.caller = Caller{Via: "lan", Addr: r.RemoteAddr}
	if id := s.sessions.lookup(r); id != "" {
		q.role, q.principal = RoleStaff, id
	}
	switch {
	case publicLAN[r.URL.Path]:
		return true
	case !s.password.isSet():
		q.refused, q.why = true, "the box password is not set yet"
		s.bounce(w, r, "/setup", "set the box password first: open the box's page")
		return false
	case q.role == "" && r.URL.Path == "/metrics" && s.cfg.OpenMetrics:
		q.why = "metrics are open on the practice network"
		return true
	case q.role == "":
		q.refused, q.why = true, "not logged in"
		s.bounce(w, r, "/login", "log in with the box password")
		return false
	}
	return true
}

func (s *Server) gateTailnet(w http.ResponseWriter, r *http.Request, q *request) bool {
	q.caller = Caller{Via: "tailnet", Addr: r.RemoteAddr}
	if s.cfg.WhoIs == nil {
		q.refused, q.why = true, "the box cannot identify tailnet callers"
		s.fail(w, r, http.StatusForbidden, q.why)
		return false
	}
	c, err := s.cfg.WhoIs(r.Context(), r.RemoteAddr)
	if err != nil {
		q.refused, q.why = true, "could not identify the caller: "+err.Error()
		s.fail(w, r, http.StatusForbidden, "the box could not identify this tailnet device")
		return false
	}
	c.Via, c.Addr = "tailnet", r.RemoteAddr
	q.caller, q.role = c, s.cfg.Roles.For(c)
	if q.role == "" {
		q.refused, q.why = true, whyNoRole
		s.fail(w, r, http.StatusForbidden, whyNoRole)
		return false
	}
	q.principal = "tailnet\x00" + c.Node + "\x00" + c.Login + "\x00" + strings.Join(c.Tags, ",")
	return true
}

// record writes the request's audit record, or counts it as noise.
func (s *Server) record(q *request, code int) {
	allowed := !q.refused && (code < 400 || q.granted)
	why := q.why
	if why == "" && !allowed {
		why = http.StatusText(code)
	}
	s.flushNoise()
	if !allowed && q.role == "" && !q.tried && !s.noise.admit(q.caller.String()) {
		return
	}
	if allowed && polledReads[q.action] {
		who := cmp.Or(q.principal, q.caller.String()) // open metrics: by address
		ok, note := s.reads.admit(who+"\x00"+q.action, s.now())
		if !ok {
			return
		}
		why = cmp.Or(note, why)
	}
	_, err := s.cfg.Audit.Append(audit.Record{
		Time: s.now(), Caller: q.caller.String(), Login: q.caller.Login, Tags: q.caller.Tags,
		Role: q.role, Action: q.action, Allowed: allowed, Why: why,
	})
	if err != nil {
		s.log.Error("audit", "op", q.action, "err", err)
	}
}

// bounce sends a browser to a page, and an API client a 401 saying why.
func (s *Server) bounce(w http.ResponseWriter, r *http.Request, page, why string) {
	if isAPI(r) {
		s.fail(w, r, http.StatusUnauthorized, why)
		return
	}
	http.Redirect(w, r, page, http.StatusSeeOther)
}

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics"
}

// fail answers with an error in plain words: JSON for the API, a small
// page for browsers.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, why string) {
	if isAPI(r) {
		writeJSON(w, code, map[string]any{"ok": false, "error": why})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	s.render(w, "error", map[string]any{"Code": code, "Status": http.StatusText(code), "Why": why})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// statusWriter remembers the status code for the audit record.
type statusWriter struct {
	http.ResponseWriter
	code int
	sent bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.sent {
		w.code, w.sent = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.sent = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
