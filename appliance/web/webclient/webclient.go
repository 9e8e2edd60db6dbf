// Package webclient is a client of the box's own pages on the practice's
// network (box step of the data path), for scripts and tests that sign in
// and act as staff would.
package webclient

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// Client is a client of the box's own pages on the practice's network
// (cmd/clinicbox -listen), used the way appliance/web/API.md shows a
// script using them: the box password set at the first visit or given at
// /login, the session cookie, the CSRF token from /api/session on every
// action. It talks HTTPS to the box and accepts only the certificate
// whose fingerprint it was given.
type Client struct {
	// Base is the pages' URL, e.g. https://127.0.0.1:8080.
	Base     string
	Password string

	client *http.Client

	mu   sync.Mutex // guards the fields below
	csrf string
	// setupCode is the one-time code the box shows on its own screen
	// (and in its log) while no password is set.
	setupCode string
	// last is the last status document read, for failure reports.
	last []byte
}

// New returns a client of the pages at base that signs in with password
// and trusts the box's certificate with the SHA-256 fingerprint given as
// the box shows it (web.Fingerprint, web.ReadFingerprint), and no other.
func New(base, password, fingerprint string) *Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = pinned(fingerprint)
	return &Client{Base: strings.TrimSuffix(base, "/"), Password: password, client: &http.Client{
		Jar: jar, Transport: tr,
		// The forms answer 303 on success and draw the form again on
		// failure; the redirect's target is not needed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// SignIn sets the box password if none is set yet (with the setup code
// from SetSetupCode, or while the box's button has opened setup), else
// logs in with it, and fetches the session's CSRF token.
func (b *Client) SignIn(ctx context.Context) error {
	b.mu.Lock()
	setupCode := b.setupCode
	b.mu.Unlock()
	form := url.Values{"password": {b.Password}, "confirm": {b.Password}, "code": {setupCode}}
	code, body, err := b.do(ctx, "POST", "/setup", form, "")
	if err != nil {
		return err
	}
	if code == http.StatusConflict || code == http.StatusNotFound { // set already
		code, body, err = b.do(ctx, "POST", "/login", url.Values{"password": {b.Password}}, "")
		if err != nil {
			return err
		}
	}
	if code != http.StatusSeeOther {
		return fmt.Errorf("webclient: sign in: %d %s", code, formMessage(body))
	}
	code, body, err = b.do(ctx, "GET", "/api/session", nil, "")
	if err != nil {
		return err
	}
	var sess struct{ Role, CSRF string }
	if err := json.Unmarshal(body, &sess); err != nil || code != http.StatusOK || sess.CSRF == "" {
		return fmt.Errorf("webclient: session after sign in: %d %q (%v)", code, body, err)
	}
	b.mu.Lock()
	b.csrf = sess.CSRF
	b.mu.Unlock()
	return nil
}

// SetSetupCode gives SignIn the setup code read on the box's screen or in
// its log, which it needs to set the first password.
func (b *Client) SetSetupCode(code string) {
	b.mu.Lock()
	b.setupCode = code
	b.mu.Unlock()
}

// Status returns the status document.
func (b *Client) Status(ctx context.Context) (*status.Status, error) {
	code, body, err := b.do(ctx, "GET", "/api/status", nil, "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("webclient: status: %d %s", code, apiError(body))
	}
	var st status.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("webclient: status: %w", err)
	}
	b.mu.Lock()
	b.last = body
	b.mu.Unlock()
	return &st, nil
}

// LastStatus is the last status document Status read, or nil.
func (b *Client) LastStatus() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Act performs one of the actions of API.md ("enroll", "eject", ...) with
// an optional argument. The box's refusal comes back as an error in its
// own words.
func (b *Client) Act(ctx context.Context, name, arg string) error {
	b.mu.Lock()
	csrf := b.csrf
	b.mu.Unlock()
	var form url.Values
	if arg != "" {
		form = url.Values{"arg": {arg}}
	}
	code, body, err := b.do(ctx, "POST", "/api/actions/"+name, form, csrf)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("webclient: %s: %d %s", name, code, apiError(body))
	}
	return nil
}

// do sends a request with an optional form and CSRF token and returns the
// status code and body.
func (b *Client) do(ctx context.Context, method, path string, form url.Values, csrf string) (int, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, b.Base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("webclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("webclient: %s %s: %w", method, path, err)
	}
	return resp.StatusCode, out, nil
}

// apiError is the "error" of an API answer, or the body as it is.
func apiError(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(body))
}

// formMessage is the message a setup or login form was drawn with (its
// <p class="error">), or the body's length.
func formMessage(body []byte) string {
	const open = `<p class="error">`
	_, msg, ok := strings.Cut(string(body), open)
	if msg, _, closed := strings.Cut(msg, "</p>"); ok && closed {
		return html.UnescapeString(msg)
	}
	return fmt.Sprintf("(%d bytes, no message)", len(body))
}
