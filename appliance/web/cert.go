package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/durable"
)

// The box's own certificate for its LAN pages: self-signed, made on the
// first start and kept in the web state directory, so its fingerprint,
// once checked in a browser, stays the same for the life of the box. It
// is made again only when a file is missing or damaged, or it expired.
// The box's addresses are those it had when the certificate was made: a
// browser that is told a new address shows a name warning, as it does
// for any self-signed certificate, and the fingerprint is what the IT
// person checks.
const (
	certFile = "tls-cert.pem"
	keyFile  = "tls-key.pem"
	// certLife is long: a certificate that expires changes its
	// fingerprint, and a box may run for many years untouched.
	certLife = 20 * 365 * 24 * time.Hour
)

// Cert is the LAN pages' certificate and the fingerprint people check.
type Cert struct {
	TLS tls.Certificate
	// Fingerprint is the SHA-256 of the certificate as browsers show it:
	// upper-case hex pairs separated by colons.
	Fingerprint string
}

// CertNames are what the certificate is for: the hostname, hostname.local
// (mDNS), localhost and the addresses of the machine's interfaces.
func CertNames(hostname string) (names []string, ips []net.IP) {
	if hostname != "" {
		names = append(names, hostname, hostname+".local")
	}
	names = append(names, "localhost")
	addrs, _ := net.InterfaceAddrs() // none known: the names still count
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			ips = append(ips, n.IP)
		}
	}
	return names, ips
}

// LoadCert returns the certificate kept in dir, or makes and keeps a new
// one for names and ips when there is none, it is damaged, or it expired.
func LoadCert(dir string, names []string, ips []net.IP, now time.Time) (*Cert, error) {
	if c, err := readCert(dir, now); err == nil {
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("web: certificate: %w", err)
	}
	certPEM, keyPEM, err := makeCert(names, ips, now)
	if err != nil {
		return nil, fmt.Errorf("web: make certificate: %w", err)
	}
	// The key first: a crash between the two leaves a pair that does not
	// match, which the next start makes again.
	if err := durable.WriteFile(filepath.Join(dir, keyFile), keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("web: store certificate key: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, certFile), certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("web: store certificate: %w", err)
	}
	return readCert(dir, now)
}

// ReadFingerprint returns the fingerprint of the certificate kept in dir
// (the box's web state directory), for clients that pin it.
func ReadFingerprint(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, certFile))
	if err != nil {
		return "", fmt.Errorf("web: certificate fingerprint: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", fmt.Errorf("web: certificate fingerprint: %s holds no certificate", filepath.Join(dir, certFile))
	}
	return Fingerprint(blk.Bytes), nil
}

// Fingerprint is the SHA-256 of a DER certificate as browsers show it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	return strings.Join(pairs, ":")
}

func readCert(dir string, now time.Time) (*Cert, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err != nil {
		return nil, err
	}
	if now.After(pair.Leaf.NotAfter) {
		return nil, errors.New("expired")
	}
	return &Cert{TLS: pair, Fingerprint: Fingerprint(pair.Leaf.Raw)}, nil
}

func makeCert(names []string, ips []net.IP, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	cn := "clinicbox"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"clinicbox"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLife),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
