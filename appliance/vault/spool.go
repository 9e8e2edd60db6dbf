package vault

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A request body is streamed to a spool file of its namespace, in chunks
// of copyBuf, before the box's lock is taken: memory stays bounded
// whatever the body's size, and a box killed or cut off mid-request leaves
// only this read waiting, not every later request of that box. Under the
// lock the spooled bytes are then checked and appended where they belong.

const spoolDir = "spool"

// spooled is a body on disk.
type spooled struct {
	b    *box
	f    *os.File
	rel  string
	size int64
}

// errTooBig: the body is longer than the limit it was spooled under.
var errTooBig = errors.New("vault: body too long")

// spool streams body to a new spool file, reading at most limit bytes; a
// longer body is refused with errTooBig, or the quota problem when the
// namespace's room was the tighter bound. The caller closes the result.
func (b *box) spool(body io.Reader, limit int64) (*spooled, error) {
	b.mu.Lock()
	room := b.room()
	b.mu.Unlock()
	bound := min(limit, room)
	if err := b.root.MkdirAll(spoolDir, 0o755); err != nil {
		return nil, fmt.Errorf("vault: spool: %w", err)
	}
	rel := filepath.Join(spoolDir, randomName())
	f, err := b.root.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vault: spool: %w", err)
	}
	s := &spooled{b: b, f: f, rel: rel}
	s.size, err = io.CopyBuffer(f, io.LimitReader(body, bound+1), make([]byte, copyBuf))
	switch {
	case err != nil:
		s.close()
		return nil, problem("malformed", "reading the body: %v", err)
	case s.size > bound && bound == room && room < limit:
		s.close()
		return nil, b.full()
	case s.size > bound:
		s.close()
		return nil, errTooBig
	}
	return s, nil
}

// reader reads the spooled body from its start.
func (s *spooled) reader() io.Reader { return io.NewSectionReader(s.f, 0, s.size) }

func (s *spooled) close() {
	s.f.Close()
	s.b.root.Remove(s.rel)
}
