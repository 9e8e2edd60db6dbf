package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// apiSession tells a client who the box thinks it is and the token its
// POSTs must carry.
func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	q := reqOf(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"caller": q.caller, "who": q.caller.String(), "role": q.role, "csrf": s.csrfToken(q.principal),
	})
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Box.Status())
}

// apiHistory serves lag samples since a time (RFC 3339) or a duration ago
// ("24h"); the last day by default, a week at most.
func (s *Server) apiHistory(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	since := now.Add(-24 * time.Hour)
	if v := r.FormValue("since"); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			since = t
		} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
			since = now.Add(-d)
		} else {
			s.fail(w, r, http.StatusBadRequest, `give since as a time like 2026-11-03T09:00:00Z or a duration like "24h"`)
			return
		}
	}
	samples := s.cfg.Box.History(since)
	if samples == nil {
		samples = []status.Sample{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"since": since, "samples": samples})
}

// custodyChain is the custody log's verification, for the API and the pages.
type custodyChain struct {
	Intact bool `json:"intact"`
	// BrokenAt is the first bad entry's position, from 1; 0 when intact.
	BrokenAt int    `json:"broken_at,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Entries  int    `json:"entries"`
}

func verifyChain(entries []rotation.Entry, sealer chain.Sealer) custodyChain {
	c := custodyChain{Intact: true, Entries: len(entries)}
	var ce *chain.Error
	if err := rotation.Verify(entries, sealer); errors.As(err, &ce) {
		c = custodyChain{BrokenAt: ce.Index + 1, Reason: ce.Reason, Entries: len(entries)}
	} else if err != nil {
		c = custodyChain{Reason: err.Error(), Entries: len(entries)}
	}
	return c
}

func (s *Server) apiCustody(w http.ResponseWriter, r *http.Request) {
	entries, err := s.cfg.Box.Custody()
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "the custody log cannot be read: "+err.Error())
		return
	}
	if entries == nil {
		entries = []rotation.Entry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"chain": verifyChain(entries, s.cfg.Sealer), "entries": entries})
}

// apiAudit serves the most recent audit records (n, default 100, at most
// 1000).
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.FormValue("n"))
	if err != nil || n <= 0 {
		n = 100
	}
	recs, err := s.cfg.Audit.Tail(min(n, 1000))
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "the audit log cannot be read: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
}

func (s *Server) apiSim(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Sim == nil {
		s.fail(w, r, http.StatusNotFound, whyNoSim)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"drives": s.cfg.Sim.SimDrives()})
}

// apiBundle streams the diagnostic bundle, if the caller may have it.
func (s *Server) apiBundle(w http.ResponseWriter, r *http.Request) {
	q := reqOf(r)
	q.action = ActBundle
	ok, why := mayAct(q.role, ActBundle, s.cfg.Box.Status(), s.cfg.Sim != nil, s.now())
	q.why = why
	if !ok {
		s.fail(w, r, http.StatusForbidden, why)
		return
	}
	name := fmt.Sprintf("clinicbox-%s.tar.gz", s.now().In(s.loc).Format("20060102-150405"))
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	if err := s.cfg.Box.Bundle(r.Context(), w); err != nil {
		// Headers may be gone already; the audit record keeps the reason.
		q.refused, q.why = true, "the bundle failed: "+err.Error()
		s.log.Error("bundle", "err", err)
	}
}

// apiAction performs an action asked for with a POST carrying the CSRF
// token, after the caller's role and the consent window allow it.
func (s *Server) apiAction(w http.ResponseWriter, r *http.Request) {
	q := reqOf(r)
	name := r.PathValue("name")
	q.action = name
	arg, err := actionArg(r)
	if err != nil {
		q.why = err.Error()
		s.fail(w, r, http.StatusBadRequest, q.why)
		return
	}
	if !s.csrfOK(r, q.principal) {
		q.why = "missing or wrong CSRF token"
		s.fail(w, r, http.StatusForbidden, "the page is out of date; reload it and try again")
		return
	}
	ok, why := mayAct(q.role, name, s.cfg.Box.Status(), s.cfg.Sim != nil, s.now())
	q.why, q.granted = why, ok
	if arg != "" {
		// The audit record keeps what was asked for (a drill's moment,
		// a window's hours), quoted: the argument is the caller's text.
		q.why += "; with " + strconv.Quote(arg)
	}
	if !ok {
		s.fail(w, r, http.StatusForbidden, why)
		return
	}
	switch name {
	case ActBundle:
		err = errors.New("download the bundle from /api/bundle")
	case ActPlug:
		err = s.cfg.Sim.Plug(arg)
	case ActUnplug:
		err = s.cfg.Sim.Unplug(arg)
	default:
		err = s.cfg.Box.Act(r.Context(), Action{Name: name, Arg: arg, By: q.caller})
	}
	if err != nil {
		q.why += "; it did not happen: " + err.Error()
		writeJSON(w, http.StatusConflict, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// actionArg reads the action's argument from a form field "arg" or a JSON
// body {"arg": "..."}.
func actionArg(r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 4096)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		var body struct {
			Arg string `json:"arg"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return "", fmt.Errorf("the request body is not JSON like {\"arg\": \"...\"}: %v", err)
		}
		return body.Arg, nil
	}
	return r.PostFormValue("arg"), nil
}
