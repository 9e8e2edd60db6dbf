package postgres

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// maxCAFile bounds the CA file read: a few certificates take a few KB.
const maxCAFile = 1 << 20

// certError is a server certificate that is not the one the URL trusts.
type certError struct {
	sum    [sha256.Size]byte
	reason string
}

func (e *certError) Error() string {
	return fmt.Sprintf("server certificate SHA-256 %s %s", Fingerprint(e.sum[:]), e.reason)
}

// Fingerprint writes a SHA-256 sum as openssl prints it: AB:CD:...
func Fingerprint(sum []byte) string {
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// tlsConfig is the TLS configuration for a connection to host.
func (t Transport) tlsConfig(host string) (*tls.Config, error) {
	var roots *x509.CertPool
	if t.RootCert != "" {
		pem, err := readBounded(t.RootCert, maxCAFile)
		if err != nil {
			return nil, &Error{Problem: fmt.Sprintf("cannot read the server's CA file %s (sslrootcert in the database URL)", t.RootCert),
				Fix: "copy the CA certificate (PEM) to that path, or give sslsha256=FINGERPRINT instead", Err: err}
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, &Error{Problem: fmt.Sprintf("the CA file %s (sslrootcert in the database URL) holds no PEM certificate", t.RootCert),
				Fix: "copy the CA certificate itself (-----BEGIN CERTIFICATE-----) to that path"}
		}
	}
	sni := host
	if net.ParseIP(host) != nil {
		sni = ""
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: sni,
		// Go's own verification would want the certificate signed by a
		// system CA for the host's name, which a clinic's self-signed
		// server certificate is not; VerifyConnection checks it against
		// the URL's CA or fingerprint instead. Without either it stays
		// unverified, and SCRAM channel binding guards the login.
		InsecureSkipVerify: true,
		VerifyConnection:   func(cs tls.ConnectionState) error { return t.verify(cs, roots, host) },
	}, nil
}

// verify checks the server's certificate against the fingerprint and the
// CA, those the URL gives; with sslmode=verify-full also the host name.
func (t Transport) verify(cs tls.ConnectionState, roots *x509.CertPool, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	if t.Pin != nil && !bytes.Equal(sum[:], t.Pin) {
		return &certError{sum: sum, reason: "is not the one in sslsha256 (" + Fingerprint(t.Pin) + ")"}
	}
	if roots == nil {
		return nil
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if t.Mode == "verify-full" {
		opts.DNSName = host
	}
	if _, err := leaf.Verify(opts); err != nil {
		return &certError{sum: sum, reason: "does not check out against sslrootcert " + t.RootCert + ": " + err.Error()}
	}
	return nil
}

// readBounded reads a file of at most max bytes.
func readBounded(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return b, nil
}
