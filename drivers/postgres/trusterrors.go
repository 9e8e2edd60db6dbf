package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fixTLS says how to turn TLS on at the server and give the box its
// certificate's fingerprint.
const fixTLS = "turn TLS on at the server: in postgresql.conf set ssl = on, ssl_cert_file and ssl_key_file " +
	"(a certificate and its key, readable by the postgres user), then reload PostgreSQL (SELECT pg_reload_conf()); " +
	"then add sslsha256=FINGERPRINT to the database URL, FINGERPRINT being what " +
	"openssl x509 -in SERVER-CERT -noout -fingerprint -sha256 prints on the server. " +
	"To go without encryption knowingly, add sslmode=disable to the URL instead"

// fixImpostor is the advice when a server does not prove itself.
const fixImpostor = "if the database server was not just reconfigured, another machine on the network may be " +
	"posing as it: leave the settings as they are and have IT check the network"

// explainTrust explains the refusals that protect the password, or returns
// nil when err is none of them.
func explainTrust(where, user string, err error) error {
	var ce *certError
	var big *pgproto3.ExceededMaxBodyLenErr
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server refused TLS connection"):
		return &Error{Problem: fmt.Sprintf("the server at %s does not offer TLS, and the box sends its login only over an encrypted connection", where),
			Fix: fixTLS}
	case errors.As(err, &ce):
		return &Error{Problem: fmt.Sprintf("the server at %s is not the one the database URL trusts: its %s", where, ce.Error()),
			Fix: "if its certificate was replaced on purpose, put the new fingerprint in sslsha256 in the database URL; " + fixImpostor}
	case strings.Contains(msg, "require_auth check failed"):
		return &Error{Problem: fmt.Sprintf("the server at %s asked for the password of role %q in a form an impostor could read (%s); the box sent no password", where, user, lastPart(msg)),
			Fix: fmt.Sprintf("on the server, set password_encryption = scram-sha-256, set the password again (ALTER ROLE %s PASSWORD '...'), use scram-sha-256 in pg_hba.conf and reload; ", user) + fixImpostor}
	case strings.Contains(msg, "channel binding"):
		return &Error{Problem: fmt.Sprintf("the server at %s did not offer a login bound to its TLS certificate (SCRAM-SHA-256-PLUS), without which the box cannot tell it from an impostor (%s); the box sent no password", where, lastPart(msg)),
			Fix: "give the box the server certificate's fingerprint: add sslsha256=FINGERPRINT to the database URL, FINGERPRINT being what openssl x509 -in SERVER-CERT -noout -fingerprint -sha256 prints on the server; " + fixImpostor}
	case errors.As(err, &big):
		return tooLarge(where, big)
	}
	return nil
}

func tooLarge(where string, e *pgproto3.ExceededMaxBodyLenErr) error {
	server := "the server"
	if where != "" {
		server += " at " + where
	}
	return &Error{Problem: fmt.Sprintf("%s sent a message of %d bytes, more than the %d any PostgreSQL server sends; the box refused it", server, e.ActualBodyLen, e.MaxExpectedBodyLen),
		Fix: "check that the database URL points to the clinic's PostgreSQL server; " + fixImpostor}
}

// explainReceive explains an error reading from an established connection.
func (c *Conn) explainReceive(op string, err error) error {
	var big *pgproto3.ExceededMaxBodyLenErr
	if errors.As(err, &big) {
		return fmt.Errorf("postgres: %s: %w", op, tooLarge(c.pg.Conn().RemoteAddr().String(), big))
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// lastPart is the innermost reason of a wrapped pgconn error.
func lastPart(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
