package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"net/http"
	"os"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log: who did what, when, and how it
// ended. It names files and positions, never their contents.
type AuditEntry struct {
	Time     time.Time `json:"time"`
	Addr     string    `json:"addr"`
	Node     string    `json:"node,omitempty"`
	StableID string    `json:"stable_id,omitempty"`
	Login    string    `json:"login,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Role     Role      `json:"role,omitempty"`
	Action   string    `json:"action"`
	Target   string    `json:"target,omitempty"`
	Status   int       `json:"status"`
	Detail   string    `json:"detail,omitempty"`
}

type auditLog struct {
	mu sync.Mutex
	f  *os.File
}

func openAudit(path string) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vault: audit log: %w", err)
	}
	return &auditLog{f: f}, nil
}

// write appends an entry and syncs it: an audit trail that a power cut can
// shorten is not one.
func (a *auditLog) write(e AuditEntry) {
	b, _ := json.Marshal(e)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.f.Write(append(b, '\n'))
	a.f.Sync()
}

func (a *auditLog) close() error { return a.f.Close() }

func (v *Vault) entry(r *http.Request, c *caller, act action, status int, detail string) AuditEntry {
	name := act.name
	if name == "" {
		name = r.Method + " " + r.URL.Path
	}
	return AuditEntry{
		Time: v.cfg.Now().UTC(), Addr: r.RemoteAddr, Node: c.peer.Node, StableID: c.peer.StableID,
		Login: c.peer.Login, Tags: c.peer.Tags, Role: c.role, Action: name, Target: act.target,
		Status: status, Detail: detail,
	}
}

// problemError is an error with its answer to the client.
type problemError struct{ p wire.Problem }

func (e *problemError) Error() string { return e.p.Error }

func problem(code, format string, args ...any) error {
	return &problemError{wire.Problem{Code: code, Error: "vault: " + fmt.Sprintf(format, args...)}}
}

func asProblem(err error) *wire.Problem {
	var pe *problemError
	if errors.As(err, &pe) {
		return &pe.p
	}
	return &wire.Problem{Code: "internal", Error: err.Error()}
}
