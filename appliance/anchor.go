package appliance

import (
	"encoding/json"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/durable"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// heads returns the signed heads of the custody and audit logs, to keep
// outside the box: a log later found shorter than a head was cut.
func (a *Appliance) heads() chain.Heads {
	var hs chain.Heads
	now := a.cfg.Now()
	if h, ok := a.custody.Head(now); ok {
		hs.Heads = append(hs.Heads, h)
	}
	if al := a.audit.Load(); al != nil {
		if h, ok := al.Head(now); ok {
			hs.Heads = append(hs.Heads, h)
		}
	}
	return hs
}

// anchorOn returns what writes the logs' heads, as they are now, to the top
// of the drive in the box (rotation.HeadFile, beside its identity file)
// when the drive is written to; it does nothing for a drive the box does
// not write. It is called on the loop and its result runs in the eject.
func (a *Appliance) anchorOn(b *inBox) func() error {
	if !b.writable || b.dir == "" {
		return func() error { return nil }
	}
	hs, dir := a.heads(), b.dir
	return func() error {
		data, err := json.MarshalIndent(hs, "", "  ")
		if err != nil {
			return err
		}
		return durable.WriteFile(filepath.Join(dir, rotation.HeadFile), append(data, '\n'), 0o644)
	}
}
