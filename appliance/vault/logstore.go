package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// logHeads reads the heads the vault holds; none before the first batch.
// b.mu is held.
func (b *box) logHeads() (chain.Heads, error) {
	hs := chain.Heads{Heads: []chain.Head{}}
	data, err := b.root.ReadFile(headsRel)
	if errors.Is(err, os.ErrNotExist) {
		return hs, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &hs)
	}
	if err != nil {
		return hs, fmt.Errorf("vault: the log heads of %s: %w", b.ns, err)
	}
	return hs, nil
}

func headOf(hs chain.Heads, name string) (chain.Head, bool) {
	for _, h := range hs.Heads {
		if h.Log == name {
			return h, true
		}
	}
	return chain.Head{}, false
}

// writeHeads stores hs with h in place of its log's head, custody first.
// b.mu is held.
func (b *box) writeHeads(hs chain.Heads, h chain.Head) error {
	out := chain.Heads{Heads: []chain.Head{}}
	for _, name := range []string{"custody", "audit"} {
		if name == h.Log {
			out.Heads = append(out.Heads, h)
		} else if o, ok := headOf(hs, name); ok {
			out.Heads = append(out.Heads, o)
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return b.writeFile(headsRel, append(data, '\n'))
}

// lastLogEntry returns the last entry of a stored log. Bytes after its
// last newline were never acknowledged (the vault stopped mid-append) and
// are cut off. b.mu is held.
func (b *box) lastLogEntry(name string, k logKind) (chain.Link, bool, error) {
	f, err := b.root.OpenFile(logRel(name), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return chain.Link{}, false, nil
	}
	if err != nil {
		return chain.Link{}, false, fmt.Errorf("vault: the %s log: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return chain.Link{}, false, fmt.Errorf("vault: the %s log: %w", name, err)
	}
	n := min(fi.Size(), int64(chain.MaxLine)+2)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, fi.Size()-n); err != nil {
		return chain.Link{}, false, fmt.Errorf("vault: the %s log: %w", name, err)
	}
	end := bytes.LastIndexByte(tail, '\n') + 1
	if cut := int64(len(tail) - end); cut > 0 {
		if err := f.Truncate(fi.Size() - cut); err != nil {
			return chain.Link{}, false, fmt.Errorf("vault: cut an unacknowledged %s entry: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return chain.Link{}, false, err
		}
		b.used -= cut
	}
	tail = bytes.TrimSuffix(tail[:end], []byte("\n"))
	if len(tail) == 0 {
		return chain.Link{}, false, nil
	}
	l, _, err := k.parse(tail[bytes.LastIndexByte(tail, '\n')+1:])
	if err != nil {
		return chain.Link{}, false, fmt.Errorf("vault: the last entry of the stored %s log is damaged: %w", name, err)
	}
	return l, true, nil
}

// logsOf is the namespace a read of logs is for. The logs name staff and
// drives, never patients: the support role, which audits the boxes, may
// read them as the restore role may.
func (v *Vault) logsOf(r *http.Request, c *caller) (*box, error) {
	if c.role == StatusOnly {
		as := *c
		as.role = Read
		c = &as
	}
	return v.readable(r, c)
}

// getLogHeads answers the heads the vault holds, as a drive's
// custody-head.json: an anchor for clinicctl custody verify.
func (v *Vault) getLogHeads(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	act := action{name: "logs.heads", quiet: c.role == Upload}
	b, err := v.logsOf(r, c)
	if err != nil {
		return act, err
	}
	act.target = b.ns
	b.mu.Lock()
	hs, err := b.logHeads()
	b.mu.Unlock()
	if err != nil {
		return act, err
	}
	writeJSON(w, http.StatusOK, hs)
	return act, nil
}

// getLog serves a stored log as JSON lines, up to its last entry stored
// when the request came.
func (v *Vault) getLog(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	name := r.PathValue("log")
	act := action{name: "logs.read", target: name}
	b, err := v.logsOf(r, c)
	if err != nil {
		return act, err
	}
	act.target = b.ns + "/" + name
	b.mu.Lock()
	f, err := b.root.Open(logRel(name))
	var size int64
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	b.mu.Unlock()
	if err != nil {
		return act, problem("not_found", "the vault holds no %s log for namespace %s", name, b.ns)
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/jsonl")
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(f, 0, size))
	return act, nil
}
