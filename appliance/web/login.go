package web

import (
	"net/http"
)

// The LAN's first visit sets the box password; later visits log in with
// it. Both forms are plain HTML posts, protected from other web sites by
// the cross-origin check; there is no session yet to bind a token to.

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	if s.password.isSet() {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.form(w, http.StatusOK, "setup", "")
}

func (s *Server) setup(w http.ResponseWriter, r *http.Request) {
	q := reqOf(r)
	q.action = "set password"
	if s.password.isSet() {
		q.refused, q.why = true, "the password is already set"
		s.form(w, http.StatusConflict, "login", errPasswordSet.Error())
		return
	}
	host := hostOnly(r.RemoteAddr)
	end, no := s.tries.begin(host, s.sessions)
	if no != nil {
		s.refuse(w, q, "setup", no)
		return
	}
	q.tried = true
	defer end() // setting the password hashes it
	if !s.setupGate.armed(s.now(), r.PostFormValue("code")) {
		q.refused, q.why = true, "setup was not opened at the box (no button press, no setup code)"
		s.form(w, http.StatusForbidden, "setup", setupClosed)
		return
	}
	s.sessions.succeeded(host)
	q.role = "setup"
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm") {
		q.refused, q.why = true, "the two passwords differ"
		s.form(w, http.StatusBadRequest, "setup", "The two passwords are not the same; type them again.")
		return
	}
	if err := s.password.set(pw); err != nil {
		q.refused, q.why = true, err.Error()
		code, page := http.StatusBadRequest, "setup"
		if err == errPasswordSet {
			code, page = http.StatusConflict, "login"
		}
		s.form(w, code, page, err.Error())
		return
	}
	q.why = "first-run password set"
	s.setupGate.disarm()
	s.sessions.start(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if !s.password.isSet() {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return
	}
	if reqOf(r).role != "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.form(w, http.StatusOK, "login", "")
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	q := reqOf(r)
	q.action = "login"
	host := hostOnly(r.RemoteAddr)
	end, no := s.tries.begin(host, s.sessions)
	if no != nil {
		s.refuse(w, q, "login", no)
		return
	}
	q.tried = true
	ok, err := s.password.check(r.PostFormValue("password"))
	end()
	if err != nil {
		s.log.Error("login", "err", err)
		q.refused, q.why = true, err.Error()
		s.form(w, http.StatusInternalServerError, "login", "The box cannot check passwords right now; see its diagnostic bundle.")
		return
	}
	if !ok {
		q.refused, q.why = true, "wrong password"
		s.form(w, http.StatusUnauthorized, "login", "That is not the box password.")
		return
	}
	s.sessions.succeeded(host)
	q.role, q.why = RoleStaff, "password accepted"
	s.sessions.start(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	q := reqOf(r)
	q.action = "logout"
	if !s.csrfOK(r, q.principal) {
		q.refused, q.why = true, "missing or wrong CSRF token"
		s.fail(w, r, http.StatusForbidden, "the page is out of date; reload it and try again")
		return
	}
	s.sessions.end(w, q.principal)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// form draws the setup or login page with an optional message.
func (s *Server) form(w http.ResponseWriter, code int, page, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	data := map[string]any{"Practice": s.cfg.Practice, "Message": msg, "Min": minPassword, "Fingerprint": s.cert.Fingerprint}
	if until := s.setupGate.openUntil(s.now()); !until.IsZero() {
		data["SetupUntil"] = until.In(s.loc).Format("15:04")
	}
	s.render(w, page, data)
}
