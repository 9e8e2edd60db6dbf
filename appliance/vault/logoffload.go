package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// A box's custody and audit logs go into the bucket as they grow, so that
// the trail survives the loss of the vault node that received it. Objects
// are never replaced: each pass stores what a log gained since the last
// one as an object named by the offset it starts at
// (logs/NAME/OFFSET, 16 digits), and the heads and the pinned key whole.
// A node rebuilding the namespace from the bucket joins a log's objects
// back in order and refuses a gap or an overlap. A pass stores only what
// appends completed (the size is read under the box's lock, which every
// append holds through its fsync).

// logNames are the logs a namespace keeps, in the order they are stored.
var logNames = []string{"custody", "audit"}

// maxLogPart bounds one stored part when it is read back: a pass stores
// what a log gained since the last, which the vault's limits on a batch
// keep small.
const maxLogPart = 1 << 30

func logPartPrefix(name string) string { return path.Join(logsDir, name) + "/" }

func logPartKey(name string, off int64) string {
	return fmt.Sprintf("%s%016d", logPartPrefix(name), off)
}

// logFiles lists the namespace's log files that exist, relative to its
// directory.
func logFiles(b *box) []wire.FileEntry {
	var files []wire.FileEntry
	for _, rel := range []string{logRel("custody"), logRel("audit"), headsRel, pinRel} {
		if fi, err := b.root.Stat(rel); err == nil && fi.Mode().IsRegular() {
			files = append(files, wire.FileEntry{Path: filepath.ToSlash(rel), Size: fi.Size()})
		}
	}
	return files
}

// offloadLogs stores what changed in the namespace's logs since the last
// pass; the lease was renewed by the caller.
func (v *Vault) offloadLogs(ctx context.Context, b *box, files []wire.FileEntry, changed map[string]bool) error {
	for _, f := range files {
		if !changed[f.Path] {
			continue
		}
		var err error
		if name, ok := strings.CutSuffix(strings.TrimPrefix(f.Path, logsDir+"/"), ".jsonl"); ok {
			err = v.offloadLogTail(ctx, b, name)
		} else {
			err = v.offloadLogFile(ctx, b, f.Path)
		}
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
	}
	return nil
}

func (v *Vault) offloadLogFile(ctx context.Context, b *box, rel string) error {
	data, err := b.root.ReadFile(filepath.FromSlash(rel))
	if err != nil {
		return err
	}
	return v.cfg.Bucket.PutFile(ctx, b.ns, rel, bytes.NewReader(data), int64(len(data)))
}

// offloadLogTail stores the bytes log name gained beyond what the bucket
// holds.
func (v *Vault) offloadLogTail(ctx context.Context, b *box, name string) error {
	st := v.cfg.Bucket.Store()
	parts, err := logParts(ctx, st, b.ns, name)
	if err != nil {
		return err
	}
	end := partsEnd(parts)
	b.mu.Lock()
	fi, err := b.root.Stat(logRel(name))
	b.mu.Unlock()
	if err != nil {
		return err
	}
	switch size := fi.Size(); {
	case size == end:
		return nil
	case size < end:
		return fmt.Errorf("the bucket holds %d bytes of the %s log, more than this node's %d: another node wrote it; this node leaves it alone", end, name, size)
	}
	f, err := b.root.Open(logRel(name))
	if err != nil {
		return err
	}
	defer f.Close()
	n := fi.Size() - end
	_, err = st.PutIfAbsent(ctx, path.Join(b.ns, logPartKey(name, end)), io.NewSectionReader(f, end, n), n)
	return err
}

// logPart is one stored part of a log.
type logPart struct {
	store.Info
	off int64
}

// logParts lists a log's parts in the bucket, refusing a gap or an
// overlap between them.
func logParts(ctx context.Context, st store.Store, ns, name string) ([]logPart, error) {
	return partsUnder(ctx, st, path.Join(ns, logPartPrefix(name))+"/", "the "+name+" log")
}

// partsUnder lists the parts of a file stored by offset under prefix, in
// order, refusing a gap or an overlap between them.
func partsUnder(ctx context.Context, st store.Store, prefix, what string) ([]logPart, error) {
	var parts []logPart
	err := st.List(ctx, prefix, func(fi store.Info) error {
		off, err := strconv.ParseInt(strings.TrimPrefix(fi.Key, prefix), 10, 64)
		if err != nil || off < 0 || len(fi.Key)-len(prefix) != 16 || fi.Size > maxLogPart {
			return fmt.Errorf("%s is not a part of %s", fi.Key, what)
		}
		if end := partsEnd(parts); off != end {
			return fmt.Errorf("%s in the bucket has a gap or an overlap at byte %d (%s)", what, end, fi.Key)
		}
		parts = append(parts, logPart{fi, off})
		return nil
	})
	return parts, err
}

// partsEnd is the offset after the last part.
func partsEnd(parts []logPart) int64 {
	if n := len(parts); n > 0 {
		return parts[n-1].off + parts[n-1].Size
	}
	return 0
}

// isLogPart reports whether a key relative to its namespace is a part of
// a log, which rehydrateLogs joins back.
func isLogPart(rel string) bool {
	for _, name := range logNames {
		if strings.HasPrefix(rel, logPartPrefix(name)) {
			return true
		}
	}
	return false
}

// rehydrateLogs joins each log's parts back into its file, durably.
func rehydrateLogs(ctx context.Context, st store.Store, root *os.Root, ns string) error {
	for _, name := range logNames {
		parts, err := logParts(ctx, st, ns, name)
		if err != nil {
			return err
		}
		if len(parts) == 0 {
			continue
		}
		var size int64
		for _, p := range parts {
			size += p.Size
		}
		if err := root.MkdirAll(logsDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		r := &partsReader{ctx: ctx, st: st, parts: parts}
		err = writeLocal(root, logRel(name), r, size, "the "+name+" log")
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// partsReader reads a log's parts one after another, opening each only
// when the one before is read whole.
type partsReader struct {
	ctx   context.Context
	st    store.Store
	parts []logPart
	cur   io.ReadCloser
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if len(r.parts) == 0 {
				return 0, io.EOF
			}
			rc, err := r.st.Get(r.ctx, r.parts[0].Key, 0, r.parts[0].Size)
			if err != nil {
				return 0, err
			}
			r.cur, r.parts = rc, r.parts[1:]
		}
		n, err := r.cur.Read(p)
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur, err = nil, nil
			if n == 0 {
				continue
			}
		}
		return n, err
	}
}

func (r *partsReader) Close() {
	if r.cur != nil {
		r.cur.Close()
	}
}
