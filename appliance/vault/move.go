package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// A namespace is named after the tailnet identity of the box that created
// it, and a caller writes only its own. A replacement box (new hardware, a
// new tailnet node, the practice's signing key restored from its key
// backup) continues the old box's namespace by a move: a statement naming
// the namespace and the new identity, signed with the key the namespace's
// backups are signed with and dated within wire.MoveWindow of the vault's
// clock. Every accepted move is kept in moves.json (and the audit log); from
// then on the new identity writes the namespace and the old one nothing.

const (
	movesFile = "moves.json"
	// maxMoves bounds moves.json: a move per replaced box.
	maxMoves    = 10000
	maxMoveBody = 16 << 10
)

// moveRecord is one accepted move.
type moveRecord struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Signed    time.Time `json:"signed"`
	At        time.Time `json:"at"`
	Node      string    `json:"node"`
	Signature []byte    `json:"signature"`
}

// moves are the accepted moves, in order, as moves.json holds them.
type moves struct {
	mu     sync.Mutex
	path   string
	list   []moveRecord
	bucket store.Store // nil: moves.json is all there is (movebucket.go)
}

func loadMoves(dir string, b *bucket.Bucket) (*moves, error) {
	m := &moves{path: filepath.Join(dir, movesFile)}
	if b != nil {
		m.bucket = b.Store()
	}
	f, err := os.Open(m.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %s: %w", movesFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMoves*1024+1))
	if err == nil && len(data) > maxMoves*1024 {
		err = errors.New("larger than the vault ever writes")
	}
	if err == nil {
		err = json.Unmarshal(data, &m.list)
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %s: %w", movesFile, err)
	}
	return m, nil
}

// owners maps each moved namespace to the identity that writes it now.
// m.mu is held.
func (m *moves) owners() map[string]string {
	own := map[string]string{}
	for _, r := range m.list {
		own[r.From] = r.To
	}
	return own
}

// resolve returns the namespace the identity id writes: the one moved to
// it, or its own unless that was moved away.
func (m *moves) resolve(id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.list) == 0 {
		return id, nil
	}
	own := m.owners()
	for ns, to := range own {
		if to == id {
			return ns, nil
		}
	}
	if to, moved := own[id]; moved {
		return "", fmt.Errorf("namespace %s was moved to identity %s; this identity writes nothing any more", id, to)
	}
	for _, r := range m.list {
		if r.To == id {
			return "", fmt.Errorf("namespace %s, moved to this identity, was moved on to identity %s", r.From, own[r.From])
		}
	}
	return id, nil
}

// add records r durably; check runs under the lock first, on every move
// the bucket holds when there is one.
func (m *moves) add(ctx context.Context, r moveRecord, check func(list []moveRecord) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bucket != nil {
		return m.addToBucket(ctx, r, check)
	}
	if err := check(m.list); err != nil {
		return err
	}
	if len(m.list) >= maxMoves {
		return problem("quota", "the vault holds %d moves, its limit", len(m.list))
	}
	list := append(m.list[:len(m.list):len(m.list)], r)
	if err := m.save(list); err != nil {
		return err
	}
	m.list = list
	return nil
}

// move is POST /v1/move.
func (v *Vault) move(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	act := action{name: "namespace.move"}
	req, st, err := readMove(r)
	if err != nil {
		return act, err
	}
	act.target = st.From + " -> " + st.To
	if err := v.checkMove(c, st); err != nil {
		return act, err
	}
	// The node moving a namespace holds its lease, having read the
	// namespace and the moves back from the bucket if another node wrote
	// them last.
	if err := v.hold(r.Context(), st.From); err != nil {
		return act, err
	}
	if err := v.verifyMove(st.From, req); err != nil {
		return act, err
	}
	if ns, _ := v.moves.resolve(c.id); ns == st.From {
		writeJSON(w, http.StatusOK, wire.MoveAnswer{Namespace: ns, Already: true})
		return act, nil
	}
	rec := moveRecord{From: st.From, To: st.To, Signed: st.Time, At: v.cfg.Now().UTC(), Node: c.peer.Node, Signature: req.Signature}
	if err := v.moves.add(r.Context(), rec, func(list []moveRecord) error { return v.fresh(list, rec) }); err != nil {
		return act, err
	}
	writeJSON(w, http.StatusOK, wire.MoveAnswer{Namespace: st.From})
	return act, nil
}

func readMove(r *http.Request) (wire.MoveRequest, wire.MoveStatement, error) {
	var req wire.MoveRequest
	var st wire.MoveStatement
	data, err := io.ReadAll(io.LimitReader(r.Body, maxMoveBody+1))
	if err != nil || len(data) > maxMoveBody {
		return req, st, problem("too_large", "a move is at most %d bytes", maxMoveBody)
	}
	if err := decodeStrict(data, &req); err != nil {
		return req, st, problem("malformed", "move: %v", err)
	}
	if err := decodeStrict(req.Statement, &st); err != nil {
		return req, st, problem("malformed", "move statement: %v", err)
	}
	return req, st, nil
}

func decodeStrict(data []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// checkMove checks what the statement asks for against the caller and the
// vault's clock, before any key is read.
func (v *Vault) checkMove(c *caller, st wire.MoveStatement) error {
	if err := checkNamespace(st.From); err != nil {
		return err
	}
	if st.To != c.id {
		return problem("forbidden", "the move names identity %s; the caller is %s", st.To, c.id)
	}
	if st.From == st.To {
		return problem("malformed", "a move from %s to itself", st.From)
	}
	if d := v.cfg.Now().Sub(st.Time); d > wire.MoveWindow || d < -wire.MoveWindow {
		return problem("stale", "the move is dated %s, %s from the vault's clock; a move must be signed within %s of it", st.Time.UTC().Format(time.RFC3339), d.Round(time.Second), wire.MoveWindow)
	}
	return nil
}

// verifyMove checks the signature with the key the namespace from is
// signed with.
func (v *Vault) verifyMove(from string, req wire.MoveRequest) error {
	if _, err := os.Stat(filepath.Join(v.cfg.Dir, "boxes", from, "repo")); err != nil {
		return problem("not_found", "no repository in namespace %s to move", from)
	}
	b, err := v.getBox(from)
	if err != nil {
		return err
	}
	b.mu.Lock()
	key, pinned, err := b.signerKey()
	b.mu.Unlock()
	switch {
	case err != nil:
		return err
	case !pinned:
		return problem("forbidden", "namespace %s has no signing key to check a move with", from)
	}
	if err := key.Verify(wire.MovePurpose, req.Statement, req.Signature); err != nil {
		return problem("forbidden", "the move is not signed with the key of namespace %s (%s): %v", from, key, err)
	}
	return nil
}

// fresh refuses a replayed move, one older than the namespace's last move,
// and a move into an identity that has backups of its own or writes
// another namespace. The moves' lock is held.
func (v *Vault) fresh(list []moveRecord, r moveRecord) error {
	for _, old := range list {
		switch {
		case bytes.Equal(old.Signature, r.Signature):
			return problem("replayed", "this move was already made on %s", old.At.Format(time.RFC3339))
		case old.From == r.From && !r.Signed.After(old.Signed):
			return problem("stale", "namespace %s was last moved by a statement signed %s; this one is not newer", r.From, old.Signed.Format(time.RFC3339))
		case old.From == r.To || old.To == r.To:
			return problem("exists", "identity %s already took part in a move (%s -> %s)", r.To, old.From, old.To)
		}
	}
	if v.hasRepo(r.To) {
		return problem("exists", "identity %s already has its own repository in the vault; a namespace moves only into an identity that has stored nothing", r.To)
	}
	return nil
}

func (v *Vault) hasRepo(ns string) bool {
	_, err := os.Stat(filepath.Join(v.cfg.Dir, "boxes", ns, "repo", "clinicbox-repo.json"))
	return err == nil
}
