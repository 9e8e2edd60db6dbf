package web

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/clinicbox/clinicbox/rotation"
)

// pagePolicy lets the pages load only the box's own script, style sheet
// and data (the icon is an empty data: URL), and no site frame them.
const pagePolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// exportPolicy is for the custody month page, which carries its own
// style sheet inline so that it prints the same when saved: that style
// and nothing else.
var exportPolicy = func() string {
	sum := sha256.Sum256([]byte(rotation.MonthStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// hsts is a year. It is sent only over HTTPS, and a browser heeds it
// only once it trusts the box's certificate.
const hsts = "max-age=31536000"

// secured sets the headers every answer carries, and when plainRedirect
// is set answers plain HTTP with a redirect to HTTPS and nothing else: no
// page, no API, no cookie.
func secured(next http.Handler, plainRedirect bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pagePolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hsts)
		} else if plainRedirect {
			toHTTPS(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// toHTTPS redirects to the same address over HTTPS: the LAN port speaks
// both, so the host and port stay.
func toHTTPS(w http.ResponseWriter, r *http.Request) {
	if r.Host == "" {
		http.Error(w, "use https://", http.StatusBadRequest)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusMovedPermanently)
}
