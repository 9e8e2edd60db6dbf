package alert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// mailServer is an in-process SMTP server (go-smtp's server side) that
// requires AUTH PLAIN over TLS when it has a certificate.
type mailServer struct {
	addr   string
	caFile string // PEM of its self-signed certificate

	mu    sync.Mutex
	auths int // AUTH attempts
	got   chan received
}

type received struct {
	tls      bool
	user     string
	from     string
	rcpts    []string
	data     []byte
	greeting string
}

type serverMode int

const (
	startTLS serverMode = iota // STARTTLS offered, AUTH PLAIN required
	plain                      // no TLS, no AUTH: a LAN relay
	implicit                   // TLS from the first byte
)

func newMailServer(t *testing.T, mode serverMode) *mailServer {
	t.Helper()
	ms := &mailServer{got: make(chan received, 10)}
	cert, pemBytes := selfSigned(t)
	ms.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ms.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{srv: ms, conn: c, requireAuth: mode != plain}, nil
	}))
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case startTLS:
		s.TLSConfig = tlsCfg
	case implicit:
		l = tls.NewListener(l, tlsCfg)
	}
	ms.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return ms
}

type mailSession struct {
	srv         *mailServer
	conn        *smtp.Conn
	requireAuth bool
	r           received
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	s.srv.mu.Lock()
	s.srv.auths++
	s.srv.mu.Unlock()
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "box" || pass != "mail-pw" {
			return errors.New("invalid credentials")
		}
		s.r.user = user
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.requireAuth && s.r.user == "" {
		return smtp.ErrAuthRequired
	}
	_, s.r.tls = s.conn.TLSConnectionState()
	s.r.from, s.r.greeting = from, s.conn.Hostname()
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.rcpts = append(s.r.rcpts, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.data = b
	s.srv.got <- s.r
	return nil
}

func (s *mailSession) Reset()        { s.r = received{user: s.r.user} }
func (s *mailSession) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1, valid for an hour.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test mail server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func (ms *mailServer) wait(t *testing.T) received {
	t.Helper()
	select {
	case r := <-ms.got:
		return r
	case <-time.After(testenv.Patience(t)):
		t.Fatal("no message reached the mail server")
		return received{}
	}
}

// The whole path: a failure in the status document becomes an e-mail
// delivered over STARTTLS with AUTH PLAIN.
func TestEmailAlertEndToEnd(t *testing.T) {
	ms := newMailServer(t, startTLS)
	n, err := New(Config{StateDir: t.TempDir(), Hostname: "clinicbox-smith", SMTP: &SMTPConfig{
		Server: ms.addr, Username: "box", Password: "mail-pw", CAFile: ms.caFile,
		From: "Clinic Box <box@practice.example>", To: []string{"manager@practice.example", "Dr. Smith <smith@practice.example>"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	n.Update(now, stat(now, status.Condition{Name: "backup failed", Severity: status.Failure, Since: now.Add(-5 * time.Minute),
		Message: "Last night's backup failed. Leave the drive in; the box tries again at 21:00."}))
	r := ms.wait(t)
	if !r.tls || r.user != "box" {
		t.Errorf("TLS, user: got %v, %q; want true, box", r.tls, r.user)
	}
	if r.greeting != "clinicbox-smith" {
		t.Errorf("EHLO name over TLS: got %q; want clinicbox-smith", r.greeting)
	}
	if want := []string{"manager@practice.example", "smith@practice.example"}; r.from != "box@practice.example" || !slices.Equal(r.rcpts, want) {
		t.Errorf("envelope: got %s -> %q; want box@practice.example -> %q", r.from, r.rcpts, want)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(r.data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if want := "clinicbox-smith: FAILURE: backup failed"; subject != want {
		t.Errorf("subject: got %q; want %q", subject, want)
	}
	if to := msg.Header.Get("To"); !strings.Contains(to, "manager@practice.example") || !strings.Contains(to, "smith@practice.example") {
		t.Errorf("To header: got %q", to)
	}
	body, _ := io.ReadAll(msg.Body) // net/mail leaves the transfer encoding
	text := decodeQP(t, body)
	for _, want := range []string{
		"The backup box clinicbox-smith reports a failure: backups may be at risk.",
		"Problem: backup failed",
		"What to do: Last night's backup failed. Leave the drive in; the box tries again at 21:00.",
	} {
		if !slices.Contains(strings.Split(text, "\r\n"), want) {
			t.Errorf("body lacks the line %q:\n%s", want, text)
		}
	}
	if err := n.Health(); err != nil {
		t.Errorf("health after a delivery: %v", err)
	}
}

func decodeQP(t *testing.T, b []byte) string {
	t.Helper()
	out, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(b))))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestEmailSecurity(t *testing.T) {
	withTLS, relay, smtps := newMailServer(t, startTLS), newMailServer(t, plain), newMailServer(t, implicit)
	tests := []struct {
		name    string
		srv     *mailServer
		cfg     SMTPConfig
		wantErr string // "" for delivered
	}{
		{"STARTTLS and PLAIN", withTLS, SMTPConfig{Username: "box", Password: "mail-pw"}, ""},
		{"implicit TLS", smtps, SMTPConfig{Security: "tls", Username: "box", Password: "mail-pw"}, ""},
		{"LAN relay without TLS, explicitly", relay, SMTPConfig{Security: "none"}, ""},
		{"server without STARTTLS", relay, SMTPConfig{Username: "box", Password: "mail-pw"}, "STARTTLS is required"},
		{"wrong password", withTLS, SMTPConfig{Username: "box", Password: "guess"}, "refused the login"},
		{"untrusted certificate", withTLS, SMTPConfig{Username: "box", Password: "mail-pw", CAFile: "-"}, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Server, cfg.From, cfg.To = tc.srv.addr, "box@practice.example", []string{"manager@practice.example"}
			switch cfg.CAFile {
			case "":
				cfg.CAFile = tc.srv.caFile
			case "-":
				cfg.CAFile = ""
			}
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			e, err := newEmail(cfg, "clinicbox-smith", time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			tc.srv.mu.Lock()
			authsBefore := tc.srv.auths
			tc.srv.mu.Unlock()
			err = e.send(context.Background(), Message{Time: base, Kind: KindFiring, Subject: "s", Body: "b\n"})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v; want delivered", err)
				}
				tc.srv.wait(t)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v; want an error saying %q", err, tc.wantErr)
			}
			tc.srv.mu.Lock()
			defer tc.srv.mu.Unlock()
			if tc.srv == relay && tc.srv.auths != authsBefore {
				t.Errorf("the password was offered to a server without TLS")
			}
			if strings.Contains(err.Error(), cfg.Password) && cfg.Password != "" {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}
