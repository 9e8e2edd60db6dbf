package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// emailTimeout bounds one delivery, from dialing to QUIT.
const emailTimeout = 2 * time.Minute

// email sends messages over SMTP.
type email struct {
	cfg      SMTPConfig
	host     string
	loc      *time.Location
	password string
	from     *mail.Address
	to       []*mail.Address
	tls      *tls.Config
}

func newEmail(cfg SMTPConfig, host string, loc *time.Location) (*email, error) {
	e := &email{cfg: cfg, host: host, loc: loc, password: cfg.Password}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("alert: alerts.smtp.password_file: %w", err)
		}
		e.password = strings.TrimSpace(string(b))
	}
	e.from, _ = mail.ParseAddress(cfg.From)
	for _, to := range cfg.To {
		a, _ := mail.ParseAddress(to)
		e.to = append(e.to, a)
	}
	server, _, _ := net.SplitHostPort(cfg.Server)
	e.tls = &tls.Config{ServerName: server, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("alert: alerts.smtp.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("alert: alerts.smtp.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		e.tls.RootCAs = pool
	}
	return e, nil
}

func (e *email) name() string       { return "email" }
func (e *email) wants(Message) bool { return true }

func (e *email) send(ctx context.Context, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, emailTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.cfg.Server)
	if err != nil {
		return fmt.Errorf("e-mail: cannot reach the mail server %s: %w", e.cfg.Server, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := e.open(conn)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := e.auth(c); err != nil {
		return err
	}
	rcpts := make([]string, len(e.to))
	for i, a := range e.to {
		rcpts[i] = a.Address
	}
	if err := c.SendMail(e.from.Address, rcpts, bytes.NewReader(e.format(m))); err != nil {
		return fmt.Errorf("e-mail: the mail server %s did not take the message: %w", e.cfg.Server, err)
	}
	return c.Quit()
}

// open greets the server and sets up TLS as configured.
func (e *email) open(conn net.Conn) (*smtp.Client, error) {
	switch e.cfg.Security {
	case "tls":
		c := smtp.NewClient(tls.Client(conn, e.tls))
		if err := c.Hello(e.host); err != nil {
			return nil, fmt.Errorf("e-mail: TLS with %s failed: %w", e.cfg.Server, err)
		}
		return c, nil
	case "none":
		c := smtp.NewClient(conn)
		return c, c.Hello(e.host)
	}
	// STARTTLS: go-smtp greets as "localhost" before the upgrade; the
	// box's name follows over TLS.
	c, err := smtp.NewClientStartTLS(conn, e.tls)
	if err != nil {
		return nil, fmt.Errorf("e-mail: the mail server %s did not start TLS (STARTTLS is required; check the server and port, or set security to \"tls\" for port 465): %w", e.cfg.Server, err)
	}
	if err := c.Hello(e.host); err != nil {
		c.Close()
		return nil, fmt.Errorf("e-mail: TLS with %s failed: %w", e.cfg.Server, err)
	}
	return c, nil
}

// auth logs in with PLAIN, or LOGIN when the server offers only that. It
// runs only over TLS (Validate refuses a username with security "none").
func (e *email) auth(c *smtp.Client) error {
	if e.cfg.Username == "" {
		return nil
	}
	if _, ok := c.TLSConnectionState(); !ok {
		return fmt.Errorf("e-mail: not sending the password to %s without TLS", e.cfg.Server)
	}
	var a sasl.Client
	switch {
	case c.SupportsAuth(sasl.Plain):
		a = sasl.NewPlainClient("", e.cfg.Username, e.password)
	case c.SupportsAuth(sasl.Login):
		a = sasl.NewLoginClient(e.cfg.Username, e.password)
	default:
		return fmt.Errorf("e-mail: the mail server %s offers neither PLAIN nor LOGIN authentication", e.cfg.Server)
	}
	if err := c.Auth(a); err != nil {
		return fmt.Errorf("e-mail: the mail server %s refused the login for %q; check alerts.smtp.username and the password: %w", e.cfg.Server, e.cfg.Username, err)
	}
	return nil
}

// format writes m as an RFC 5322 message: plain text, UTF-8,
// quoted-printable, CRLF line ends.
func (e *email) format(m Message) []byte {
	var b bytes.Buffer
	to := make([]string, len(e.to))
	for i, a := range e.to {
		to[i] = a.String()
	}
	id := make([]byte, 12)
	rand.Read(id)
	hdr := []string{
		"From: " + e.from.String(),
		"To: " + strings.Join(to, ", "),
		"Subject: " + mime.QEncoding.Encode("utf-8", m.Subject),
		"Date: " + m.Time.In(e.loc).Format(time.RFC1123Z),
		fmt.Sprintf("Message-ID: <%s@%s>", hex.EncodeToString(id), e.host),
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: quoted-printable",
		"X-Clinicbox-Kind: " + m.Kind,
	}
	b.WriteString(strings.Join(hdr, "\r\n") + "\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}
