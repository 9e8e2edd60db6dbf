package offsite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// client speaks the vault's API.
type client struct {
	base string
	http *http.Client
}

// vaultError is the vault's answer to a refused request.
type vaultError struct {
	status int
	wire.Problem
}

func (e *vaultError) Error() string {
	return fmt.Sprintf("offsite: vault answered %d (%s): %s", e.status, e.Code, e.Problem.Error)
}

// code returns the vault's problem code of err, or "".
func code(err error) (string, *wire.Problem) {
	var ve *vaultError
	if errors.As(err, &ve) {
		return ve.Code, &ve.Problem
	}
	return "", nil
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	if body == nil {
		return c.doReader(ctx, method, path, q, nil, 0, out)
	}
	return c.doReader(ctx, method, path, q, bytes.NewReader(body), int64(len(body)), out)
}

// doReader is do with a body of n bytes read from body (nil: none).
func (c *client) doReader(ctx context.Context, method, path string, q url.Values, body io.Reader, n int64, out any) error {
	u := strings.TrimSuffix(c.base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("offsite: %w", err)
	}
	if body != nil {
		req.ContentLength = n
	}
	// No User-Agent or Content-Type: the vault reads neither, and on a
	// 128 kbit/s uplink every WAL record would carry them.
	req.Header["User-Agent"] = []string{""}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("offsite: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("offsite: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		ve := &vaultError{status: resp.StatusCode}
		if json.Unmarshal(data, &ve.Problem) != nil || ve.Code == "" {
			ve.Code, ve.Problem.Error = "http", strings.TrimSpace(string(data))
		}
		return ve
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("offsite: %s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// reqTimeout bounds one request: generous, since a record after a burst of
// WAL can take many seconds on a 128 kbit/s link.
const reqTimeout = 2 * time.Minute
