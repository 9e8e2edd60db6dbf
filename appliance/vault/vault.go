// Package vault is the offsite vault's server logic, the vault step of the
// data path: an HTTP API on the tailnet that stores each box's encrypted
// repository in its own namespace, checks every arrival without the key,
// authorizes peers by their tailnet tags, audits every refusal and every
// read, applies retention, and serves restores.
package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// Role is what a peer may do.
type Role string

const (
	// Upload stores into the peer's own namespace and reads it back.
	Upload Role = "upload"
	// Read reads any namespace: restores onto a replacement machine.
	Read Role = "read"
	// StatusOnly reads the status document.
	StatusOnly Role = "status"
)

// Rule grants a role to peers carrying a tag.
type Rule struct {
	Tag  string `json:"tag"`
	Role Role   `json:"role"`
}

// DefaultRules: boxes upload, support reads status, the practice's restore
// machine reads. Everyone else is refused.
var DefaultRules = []Rule{
	{Tag: "tag:clinicbox", Role: Upload},
	{Tag: "tag:clinicrestore", Role: Read},
	{Tag: "tag:support", Role: StatusOnly},
}

// Config describes a vault.
type Config struct {
	// Dir holds the namespaces (boxes/NS/repo) and the audit log.
	Dir string
	// Rules are checked in order; the first tag the peer carries decides.
	// Nil means DefaultRules.
	Rules     []Rule
	Retention Retention
	// Limits bound each namespace; the zero value means the defaults.
	Limits Limits
	// AuditLog is the JSONL audit file; empty means Dir/audit.jsonl.
	AuditLog string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Bucket is the object storage Offload copies the namespaces into;
	// nil means none (the directory is the only copy).
	Bucket *bucket.Bucket
	// Node names this vault node in the leases it takes on namespaces
	// when several nodes share the bucket; empty means a single node that
	// takes no leases.
	Node string
	// LeaseTTL is how long a lease runs unrenewed; zero means
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// AckStored makes the acknowledgement of a WAL record mean "stored in
	// the bucket" instead of "fsynced on this node": each record is
	// flushed to the bucket before the box hears of it.
	AckStored bool
	// LocalKeep is how long committed backups and complete WAL segments
	// stay on this node's disk once the bucket holds them; Evict then
	// removes them, and reads of them are served from the bucket. Zero
	// keeps everything on disk. It needs Bucket.
	LocalKeep time.Duration
	// Standbys are the trusted standbys the vault runs, by namespace; their
	// state shows in the status document.
	Standbys map[string]*Standby
}

// Identifier says who is at the other end of a connection.
type Identifier interface {
	WhoIs(ctx context.Context, remoteAddr string) (tailnet.Peer, error)
}

// Vault serves the API. It is an http.Handler.
type Vault struct {
	cfg   Config
	who   Identifier
	log   *slog.Logger
	audit *auditLog
	mux   *http.ServeMux
	moves *moves // the namespaces moved to a replacement box (move.go)

	mu sync.Mutex
	// boxes holds each namespace opened since start, by namespace.
	boxes map[string]*box
	// leases holds this node's leases, by namespace (see lease.go).
	leases map[string]*held

	offMu sync.Mutex
	// offloaded holds each file's stamp when Offload last stored it, by
	// namespace/path; empty after a start, when everything is checked.
	offloaded map[string]stamp
	// auditStored is what the bucket holds of the audit log; nil until
	// read (auditoffload.go).
	auditStored *auditStored
}

// New opens a vault in cfg.Dir.
func New(cfg Config, who Identifier, log *slog.Logger) (*Vault, error) {
	if cfg.Dir == "" {
		return nil, errors.New("vault: no directory; set Dir to where the vault keeps its repositories")
	}
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules
	}
	for i, r := range cfg.Rules {
		if !strings.HasPrefix(r.Tag, "tag:") || (r.Role != Upload && r.Role != Read && r.Role != StatusOnly) {
			return nil, fmt.Errorf("vault: rule %d (%s -> %s): use a tag like tag:clinicbox and a role of upload, read or status", i+1, r.Tag, r.Role)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Retention = cfg.Retention.withDefaults()
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.AuditLog == "" {
		cfg.AuditLog = filepath.Join(cfg.Dir, "audit.jsonl")
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "boxes"), 0o755); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	a, err := openAudit(cfg.AuditLog)
	if err != nil {
		return nil, err
	}
	mv, err := loadMoves(cfg.Dir, cfg.Bucket)
	if err != nil {
		a.close()
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A bucket out of reach now is read again when a lease is taken, and
	// a single node's moves.json holds its own moves.
	if err := mv.sync(context.Background()); err != nil {
		log.Warn("moves not read from the bucket", "op", "move", "err", err)
	}
	v := &Vault{cfg: cfg, who: who, log: log, audit: a, moves: mv, boxes: map[string]*box{}, leases: map[string]*held{}}
	v.routes()
	return v, nil
}

// Close closes the audit log and the namespaces.
func (v *Vault) Close() error {
	v.mu.Lock()
	for _, b := range v.boxes {
		b.root.Close()
	}
	v.mu.Unlock()
	return v.audit.close()
}

func (v *Vault) ServeHTTP(w http.ResponseWriter, r *http.Request) { v.mux.ServeHTTP(w, r) }

// caller is an authorized request's peer.
type caller struct {
	peer tailnet.Peer
	role Role
	id   string // the namespace of the peer's stable node ID
	ns   string // the namespace the peer writes: id, or the one moved to it
}

var nsUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// namespace turns a stable node ID into a directory name.
func namespace(stableID string) string { return nsUnsafe.ReplaceAllString(stableID, "_") }

// handler is an API endpoint: it returns the audit action, its target and
// whether to audit a success (reads and state changes, not each WAL record).
type handler func(w http.ResponseWriter, r *http.Request, c *caller) (act action, err error)

type action struct {
	name   string
	target string
	quiet  bool // do not audit success
}

// handle wraps an endpoint with identification, authorization and audit.
func (v *Vault) handle(need Role, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := &caller{}
		peer, err := v.who.WhoIs(r.Context(), r.RemoteAddr)
		if err != nil {
			v.refuse(w, r, c, "unidentified peer: "+err.Error())
			return
		}
		c.peer, c.ns = peer, namespace(peer.StableID)
		c.role = v.roleOf(peer)
		if !allowed(c.role, need) {
			v.refuse(w, r, c, fmt.Sprintf("tags %v grant %q; %s %s needs %q", peer.Tags, c.role, r.Method, r.URL.Path, need))
			return
		}
		if err := checkNamespace(c.ns); err != nil {
			v.refuse(w, r, c, fmt.Sprintf("the peer's node ID %q makes no namespace", peer.StableID))
			return
		}
		c.id = c.ns
		if c.ns, err = v.moves.resolve(c.id); err != nil {
			v.refuse(w, r, c, err.Error())
			return
		}
		var act action
		err = checkNames(r) // before any handler touches a file
		if err == nil && need == Upload {
			err = v.holdResolved(r.Context(), c)
		}
		if err == nil {
			act, err = h(w, r, c)
		}
		if err != nil {
			// On record before the peer hears the answer.
			p := asProblem(err)
			v.audit.write(v.entry(r, c, act, p.HTTPStatus(), p.Error))
			writeJSON(w, p.HTTPStatus(), p)
			return
		}
		if !act.quiet {
			v.audit.write(v.entry(r, c, act, http.StatusOK, ""))
		}
	}
}

func (v *Vault) roleOf(p tailnet.Peer) Role {
	for _, rule := range v.cfg.Rules {
		if p.HasTag(rule.Tag) {
			return rule.Role
		}
	}
	return ""
}

// allowed reports whether role may do what need stands for.
func allowed(role, need Role) bool {
	switch need {
	case StatusOnly:
		return role != ""
	case Read:
		return role == Read || role == Upload
	case Upload:
		return role == Upload
	}
	return false
}

func (v *Vault) refuse(w http.ResponseWriter, r *http.Request, c *caller, why string) {
	v.log.Warn("refused", "op", "vault", "peer", c.peer.Node, "tags", c.peer.Tags, "path", r.URL.Path, "why", why)
	p := &wire.Problem{Code: "forbidden", Error: "vault: " + why}
	v.audit.write(v.entry(r, c, action{name: "refused", target: r.Method + " " + r.URL.Path}, http.StatusForbidden, why))
	writeJSON(w, http.StatusForbidden, p)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	// No Date: the box never reads it, and it would ride on every WAL
	// record's answer over the practice's slow uplink.
	w.Header()["Date"] = nil
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
