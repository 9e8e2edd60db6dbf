package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// A box's custody and audit logs are kept in its namespace, outside the
// repository (logs/custody.jsonl, logs/audit.jsonl), with the latest head
// of each (logs/heads.json, in the format of a drive's custody-head.json).
// A batch is stored only when it chains on from the last entry the vault
// holds, every signature in it verifies with the box's pinned key (see
// signerKey), and the head the box signed vouches for its last entry: what
// the vault holds can only grow, so a log later cut or rewritten on the box
// shows against it.

const logsDir = "logs"

func logRel(name string) string { return filepath.Join(logsDir, name+".jsonl") }

var headsRel = filepath.Join(logsDir, "heads.json")

// logKind is what the vault knows of one of a box's logs.
type logKind struct {
	purpose string
	// continues reports whether the vault's copy may start after entry 1:
	// the box removes its oldest audit files, and may have done so before
	// it first sent them.
	continues bool
	// parse reads one entry strictly and returns its link and its line as
	// the vault stores it.
	parse func(raw []byte) (chain.Link, []byte, error)
}

var logKinds = map[string]logKind{
	"custody": {rotation.CustodyPurpose, false, parseEntry[rotation.Entry]},
	"audit":   {audit.Purpose, true, parseEntry[audit.Record]},
}

// parseEntry decodes raw, refusing unknown fields and trailing data, and
// marshals it again: the vault stores only what the hashes and signatures
// cover, never bytes the box added beside them.
func parseEntry[T interface{ Link() chain.Link }](raw []byte) (chain.Link, []byte, error) {
	var e T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return chain.Link{}, nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return chain.Link{}, nil, errors.New("trailing data after the entry")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return chain.Link{}, nil, err
	}
	return e.Link(), buf.Bytes(), nil
}

// batch is a parsed LogBatch.
type batch struct {
	head  chain.Head
	links []chain.Link
	lines [][]byte
}

// readBatch reads and parses a LogBatch, at most MaxLogBatch bytes, each
// entry at most chain.MaxLine.
func readBatch(r *http.Request, name string, k logKind) (*batch, error) {
	tooLarge := problem("too_large", "a batch of the %s log may be %d bytes; send fewer entries at a time", name, wire.MaxLogBatch)
	if r.ContentLength > wire.MaxLogBatch {
		return nil, tooLarge
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxLogBatch+1))
	if err != nil {
		return nil, problem("malformed", "reading the batch: %v", err)
	}
	if len(data) > wire.MaxLogBatch {
		return nil, tooLarge
	}
	var lb wire.LogBatch
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lb); err != nil {
		return nil, problem("malformed", "the %s batch: %v", name, err)
	}
	b := &batch{head: lb.Head}
	for i, raw := range lb.Entries {
		if len(raw) > chain.MaxLine {
			return nil, problem("malformed", "entry %d of the %s batch is %d bytes, more than the %d a log line may be", i+1, name, len(raw), chain.MaxLine)
		}
		l, line, err := k.parse(raw)
		if err != nil {
			return nil, problem("malformed", "entry %d of the %s batch is not a %s entry: %v", i+1, name, name, err)
		}
		b.links, b.lines = append(b.links, l), append(b.lines, line)
	}
	n := len(b.links)
	switch {
	case lb.Head.Log != name:
		return nil, problem("malformed", "the head is of the %q log, not the %s log", lb.Head.Log, name)
	case n == 0:
		return nil, problem("malformed", "the %s batch holds no entries", name)
	case b.links[n-1].Seq != lb.Head.Seq || b.links[n-1].Hash != lb.Head.Hash:
		return nil, problem("malformed", "the head (entry %d) is not the batch's last entry (%d): sign the head at the last entry sent", lb.Head.Seq, b.links[n-1].Seq)
	}
	return b, nil
}

func (v *Vault) postLog(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	name := r.PathValue("log")
	act := action{name: "logs.append", target: name, quiet: true}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	bt, err := readBatch(r, name, logKinds[name])
	if err != nil {
		return act, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.appendLog(name, logKinds[name], bt); err != nil {
		return act, err
	}
	hs, err := b.logHeads()
	if err != nil {
		return act, err
	}
	writeJSON(w, http.StatusOK, hs)
	return act, nil
}

// appendLog checks a batch against what the vault holds and stores what is
// new in it. b.mu is held.
func (b *box) appendLog(name string, k logKind, bt *batch) error {
	hs, err := b.logHeads()
	if err != nil {
		return err
	}
	held, hasHeld := headOf(hs, name)
	h := bt.head
	if hasHeld && (h.Seq < held.Seq || (h.Seq == held.Seq && h.Hash != held.Hash)) {
		return stale(held, fmt.Sprintf("the %s head sent (entry %d) is older than or differs from the one the vault holds (entry %d): the box's log was cut or rewritten, or an old copy of it was restored", name, h.Seq, held.Seq))
	}
	key, pinned, err := b.headKey(name, h)
	if err != nil {
		return err
	}
	last, hasLast, err := b.lastLogEntry(name, k)
	if err != nil {
		return err
	}
	start := 0
	if hasLast {
		if start, err = overlap(name, bt, last, held, hasHeld); err != nil {
			return err
		}
	}
	if err := checkBatch(name, k, key, bt.links[start:], last, hasLast); err != nil {
		return err
	}
	if !pinned {
		if err := b.pin(key); err != nil {
			return err
		}
	}
	if err := b.appendLines(logRel(name), bt.lines[start:]); err != nil {
		return err
	}
	return b.writeHeads(hs, h)
}

// headKey returns the key the box's logs are checked with (the pinned one,
// or before any is pinned the key the head names) once the head checks
// with it.
func (b *box) headKey(name string, h chain.Head) (key signer.PublicKey, pinned bool, err error) {
	if key, pinned, err = b.signerKey(); err != nil {
		return key, pinned, err
	}
	if !pinned {
		if key, err = signer.ParsePublic(h.Key); err != nil {
			return key, pinned, problem("mismatch", "the %s head's key: %v", name, err)
		}
	}
	if err := chain.CheckHead(key, h); err != nil {
		return key, pinned, problem("mismatch", "%v (the vault checks this box's logs with %s)", err, key)
	}
	return key, pinned, nil
}

// overlap returns where the new entries of a batch start after last, the
// last entry the vault holds; a batch that differs from the vault's copy
// is stale, one that leaves a gap is refused.
func overlap(name string, bt *batch, last chain.Link, held chain.Head, hasHeld bool) (int, error) {
	i := indexOf(bt.links, last.Seq)
	switch {
	case i >= 0 && bt.links[i].Hash != last.Hash:
		return 0, stale(held, fmt.Sprintf("entry %d of the %s batch differs from the one the vault holds: the box's log was rewritten", last.Seq, name))
	case i >= 0:
		return i + 1, nil
	case bt.links[0].Seq != last.Seq+1:
		return 0, &problemError{wire.Problem{Code: "gap", Head: headPtr(held, hasHeld),
			Error: fmt.Sprintf("vault: the %s batch starts at entry %d; the vault holds up to entry %d: continue after it", name, bt.links[0].Seq, last.Seq)}}
	}
	return 0, nil
}

// checkBatch checks the new entries, linked to last when the vault holds
// entries, with the box's key.
func checkBatch(name string, k logKind, key signer.PublicKey, links []chain.Link, last chain.Link, hasLast bool) error {
	all := links
	if hasLast {
		all = append([]chain.Link{last}, links...)
	}
	c := chain.Spec{Name: name, Purpose: k.purpose, Continues: hasLast || k.continues, Keys: chain.Keys{Public: key}}
	for _, p := range chain.Check(c, all) {
		if p.Fault() {
			return problem("mismatch", "the %s batch does not verify: %s", name, p.Reason)
		}
	}
	return nil
}

func indexOf(links []chain.Link, seq int64) int {
	for i, l := range links {
		if l.Seq == seq {
			return i
		}
	}
	return -1
}

// stale refuses a batch that would make the vault's copy shorter or
// different, answering with the head the vault holds.
func stale(held chain.Head, why string) error {
	return &problemError{wire.Problem{Code: "stale", Head: &held, Error: "vault: " + why}}
}

func headPtr(h chain.Head, ok bool) *chain.Head {
	if !ok {
		return nil
	}
	return &h
}

// appendLines appends lines to a stored log, synced, within the quota.
// b.mu is held.
func (b *box) appendLines(rel string, lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	data := bytes.Join(lines, nil)
	if err := b.fits(int64(len(data))); err != nil {
		return err
	}
	if err := b.root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return fmt.Errorf("vault: store %s: %w", rel, err)
	}
	return b.appendSync(rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, bytes.NewReader(data), int64(len(data)))
}
