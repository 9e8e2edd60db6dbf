package postgres

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// How the password is kept from a host impersonating the server.
//
// pgconn (v5.12) has what is needed as configuration, so no wire-level
// interception is involved: RequireAuth (libpq's require_auth) refuses an
// authentication request before any password or hash is written,
// ChannelBinding asks for SCRAM-SHA-256-PLUS, and MaxProtocolMessageBodyLen
// bounds what a server may make the box allocate. What it lacks is pinning
// a certificate by fingerprint; tlsconfig.go verifies the peer for that.
//
// Only the URL decides: the settings are built with sslmode=disable so that
// neither PGSSLMODE nor a service file can add a plain-text fallback, and
// clinicbox's own TLS configuration replaces pgconn's.

// maxMessageBody bounds a server message. The largest a PostgreSQL server
// sends to a replication client are WAL messages (16 pages: 128 KB, 512 KB
// with the largest page size it can be built with) and base backup chunks
// (32 KB); 8 MB leaves a wide margin, and a hostile server's gigabyte
// claim is refused before anything is allocated.
const maxMessageBody = 8 << 20

// URL parameters clinicbox reads itself and removes before pgconn sees them.
const (
	paramMode = "sslmode"     // disable, require (the default), verify-ca, verify-full
	paramCA   = "sslrootcert" // a PEM file of the CA that signed the server's certificate
	paramPin  = "sslsha256"   // the SHA-256 fingerprint of the server's certificate
)

// Transport is how connections made with a URL reach the server.
type Transport struct {
	Host string
	// Loopback reports whether the server is on this machine (a Unix socket,
	// localhost, 127.0.0.0/8 or ::1), where a plain connection crosses no
	// network.
	Loopback bool
	// Encrypted reports whether connections use TLS.
	Encrypted bool
	// Verified reports whether the server's certificate is checked, against
	// a CA file (RootCert) or a fingerprint (Pin).
	Verified bool
	Mode     string // the URL's sslmode, "" when not given
	RootCert string
	Pin      []byte
}

// Insecure reports whether passwords and data would cross a network in
// clear text, because the URL opts out of TLS (sslmode=disable).
func (t Transport) Insecure() bool { return !t.Encrypted && !t.Loopback }

// CheckURL reads the URL's connection security settings without connecting
// or reading files. Errors name the parameter and the fix.
func CheckURL(dbURL string) (Transport, error) {
	_, t, err := prepareURL(dbURL, nil)
	return t, err
}

// prepareURL checks dbURL, removes clinicbox's parameters from it, applies
// set to the remaining query and returns the URL pgconn is to parse.
func prepareURL(dbURL string, set func(url.Values)) (string, Transport, error) {
	form := &Error{Problem: "the database URL cannot be read", Fix: "use the form postgres://ROLE:PASSWORD@SERVER:5432/postgres"}
	if dbURL == "" {
		return "", Transport{}, &Error{Problem: "no database URL given", Fix: "pass --db postgres://ROLE:PASSWORD@SERVER:5432/postgres"}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		// url.Parse quotes the URL, password and all, in its errors.
		form.Fix += "; percent-encode any of / # ? @ : % in the password"
		return "", Transport{}, form
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", Transport{}, form
	}
	q := u.Query()
	t := Transport{Host: u.Hostname(), Mode: q.Get(paramMode), RootCert: q.Get(paramCA)}
	if h := q.Get("host"); h != "" {
		t.Host = h
	}
	if strings.Contains(u.Host, ",") || strings.Contains(t.Host, ",") {
		return "", Transport{}, &Error{Problem: "the database URL names several servers", Fix: "name the one server the box backs up"}
	}
	if err := t.decide(q.Get(paramPin)); err != nil {
		return "", Transport{}, err
	}
	for _, k := range []string{paramMode, paramCA, paramPin} {
		q.Del(k)
	}
	q.Set(paramMode, "disable") // clinicbox sets up TLS itself, see above
	if set != nil {
		set(q)
	}
	u.RawQuery = q.Encode()
	return u.String(), t, nil
}

// decide reads the fingerprint and works out encryption and verification.
func (t *Transport) decide(pin string) error {
	if pin != "" {
		p, err := parsePin(pin)
		if err != nil {
			return err
		}
		t.Pin = p
	}
	return t.settle()
}

// settle decides encryption and verification for t.Host.
func (t *Transport) settle() error {
	t.Loopback = isLoopback(t.Host)
	t.Verified = t.Pin != nil || t.RootCert != ""
	t.Encrypted = false
	if strings.HasPrefix(t.Host, "/") {
		// A Unix socket never carries TLS (the server refuses it there),
		// nor leaves the machine.
		t.Verified = false
		return nil
	}
	switch t.Mode {
	case "disable":
		if t.Verified {
			return &Error{Problem: "the database URL has sslmode=disable and also a certificate to verify (sslrootcert or sslsha256)",
				Fix: "remove sslmode=disable so the box uses TLS"}
		}
	case "", "require":
		t.Encrypted = t.Verified || !t.Loopback || t.Mode == "require"
	case "verify-ca", "verify-full":
		if !t.Verified {
			return &Error{Problem: fmt.Sprintf("the database URL has sslmode=%s but nothing to verify the server's certificate with", t.Mode),
				Fix: "add sslsha256=FINGERPRINT (from openssl x509 -in server.crt -noout -fingerprint -sha256 on the server) or sslrootcert=CA-FILE to the URL"}
		}
		t.Encrypted = true
	case "prefer", "allow":
		return &Error{Problem: fmt.Sprintf("sslmode=%s in the database URL would fall back to an unencrypted connection", t.Mode),
			Fix: "remove it (the box then requires TLS), or write sslmode=disable to go without encryption knowingly"}
	default:
		return &Error{Problem: fmt.Sprintf("sslmode=%q in the database URL is not one clinicbox knows", t.Mode),
			Fix: "use require (the default), verify-ca, verify-full or disable"}
	}
	return nil
}

// parsePin reads a SHA-256 fingerprint as openssl prints it
// ("sha256 Fingerprint=AB:CD:..."), with or without colons and prefix.
func parsePin(s string) ([]byte, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	v = strings.TrimPrefix(v, "sha256 fingerprint=")
	v = strings.TrimPrefix(v, "sha256:")
	v = strings.NewReplacer(":", "", " ", "").Replace(v)
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != 32 {
		return nil, &Error{Problem: fmt.Sprintf("sslsha256=%q in the database URL is not a SHA-256 fingerprint", s),
			Fix: "copy the 64 hex digits that openssl x509 -in server.crt -noout -fingerprint -sha256 prints on the server"}
	}
	return b, nil
}

func isLoopback(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apply sets cfg's TLS, authentication policy and message bound.
func (t Transport) apply(cfg *pgconn.Config) error {
	if len(cfg.Fallbacks) > 0 {
		return &Error{Problem: "the database URL names several servers", Fix: "name the one server the box backs up"}
	}
	if t.Host == "" {
		// The URL names no host; pgconn's default (PGHOST, a Unix
		// socket directory or localhost) decides.
		t.Host = cfg.Host
		if err := t.settle(); err != nil {
			return err
		}
	}
	cfg.MaxProtocolMessageBodyLen = maxMessageBody
	cfg.TLSConfig = nil
	if t.Encrypted {
		tc, err := t.tlsConfig(cfg.Host)
		if err != nil {
			return err
		}
		cfg.TLSConfig = tc
	}
	cfg.RequireAuth, cfg.ChannelBinding = t.authPolicy()
	return nil
}

// authPolicy is what the server may ask for. A password (or its MD5 hash,
// as good as the password to whoever asks) goes only to a server whose
// certificate is verified; otherwise only SCRAM-SHA-256, which never
// reveals the password and makes the server prove it knows the role's
// secret. Over unverified TLS the SCRAM exchange must be bound to the TLS
// channel (SCRAM-SHA-256-PLUS), so a host relaying the connection is found
// out. Only a plain loopback connection may log in with no exchange (peer or
// trust authentication on the server's own machine), where nothing is sent.
func (t Transport) authPolicy() (requireAuth, channelBinding string) {
	switch {
	case t.Verified:
		return "", "prefer"
	case t.Encrypted:
		return "scram-sha-256", "require"
	case t.Loopback:
		return "scram-sha-256,none", "prefer"
	}
	return "scram-sha-256", "prefer"
}
