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
	"sync/atomic"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// client speaks the vault's API. With several vault nodes sharing one
// bucket it talks to one at a time, and moves on to the next when the one
// in use cannot be reached or answers that another node writes the box's
// namespace now ("moved"); the box's stream then reconnects there.
type client struct {
	bases []string // the nodes' addresses, the first tried first
	at    atomic.Int32
	http  *http.Client
}

func newClient(bases []string, hc *http.Client) *client {
	return &client{bases: bases, http: hc}
}

// base is the address in use and its place in bases.
func (c *client) base() (int32, string) {
	i := c.at.Load()
	return i, strings.TrimSuffix(c.bases[int(i)%len(c.bases)], "/")
}

// next moves on from the node at i, unless another request already did.
func (c *client) next(i int32) {
	if len(c.bases) > 1 {
		c.at.CompareAndSwap(i, (i+1)%int32(len(c.bases)))
	}
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
	at, base := c.base()
	u := base + path
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
		c.next(at)
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
		if ve.Code == "moved" {
			c.next(at)
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
