package vault

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// Limits bound what one box may make the vault hold.
type Limits struct {
	// Quota is the most bytes one namespace may hold (repository, index,
	// records, uploads in progress). Zero means DefaultQuota.
	Quota int64 `json:"quota"`
	// AbandonAfter is how long an incomplete backup upload may go without
	// new data before retention removes it. Zero means 48 hours.
	AbandonAfter time.Duration `json:"abandon_after"`
}

// DefaultQuota holds five weekly backups and a week of WAL of a practice
// database of a few tens of GB.
const DefaultQuota = 100 << 30

// The bounds of a segment size: PostgreSQL's own (initdb --wal-segsize).
const (
	minSegment = 1 << 20
	maxSegment = 1 << 30
)

func (l Limits) withDefaults() Limits {
	if l.Quota <= 0 {
		l.Quota = DefaultQuota
	}
	if l.AbandonAfter <= 0 {
		l.AbandonAfter = 48 * time.Hour
	}
	return l
}

// room is how many more bytes the namespace may hold. b.mu is held.
func (b *box) room() int64 { return max(0, b.quota-b.used) }

// fits refuses n more bytes when they would take the namespace past its
// quota. b.mu is held.
func (b *box) fits(n int64) error {
	if n > b.room() {
		return b.full()
	}
	return nil
}

// full is the answer when the namespace's quota is used up: the box shows
// it, and only the vault's operator can act on it.
func (b *box) full() error {
	return problem("quota", "the vault is full for this practice: ask the vault's operator to raise the quota (namespace %s holds %s of its %s)",
		b.ns, status.Bytes(b.used), status.Bytes(b.quota))
}

// measure counts the bytes the namespace holds. b.mu is held.
func (b *box) measure() error {
	var n int64
	err := fs.WalkDir(b.root.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // removed meanwhile
		}
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vault: measure namespace %s: %w", b.ns, err)
	}
	b.used = n
	return nil
}
