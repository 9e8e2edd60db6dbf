package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// Actions people can take on the box, from the LAN page, remote support or
// the demo.
const (
	ActBackup      = "backup"      // take a base backup onto the drive in the box now
	ActEject       = "eject"       // stop writing and make the drive safe to remove
	ActAcknowledge = "acknowledge" // silence the current condition
	ActConsent     = "consent"     // open the remote-support window; Arg is hours
	ActEnroll      = "enroll"      // enroll the unknown drive in the box; Arg is an optional generation
	ActDrill       = "drill"       // run a restore drill of the drive in the box now; Arg is an optional RFC 3339 moment to restore to
)

// Do performs an action on the loop goroutine and returns its outcome.
// Errors are in plain words for the person who asked.
func (a *Appliance) Do(ctx context.Context, name, arg, who string) error {
	res := make(chan error, 1)
	select {
	case a.do <- func() { res <- a.act(ctx, name, arg, who) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-res:
		a.Poke()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Appliance) act(ctx context.Context, name, arg, who string) error {
	b := a.box
	switch name {
	case ActBackup:
		switch {
		case b == nil:
			return errors.New("there is no drive in the box")
		case !b.writable || b.ejected:
			return errors.New("the drive in the box is not being written: " + first(b.dec.Reasons))
		case b.job != nil:
			return fmt.Errorf("the box is busy (%s); try again when it is done", b.activity)
		}
		if b.stream == nil {
			a.startStream(a.runCtx, b)
		}
		a.runBackup(a.runCtx, b, "requested by "+who)
		return nil
	case ActEject:
		return a.eject(a.runCtx, who)
	case ActAcknowledge:
		a.acknowledge()
		return nil
	case ActConsent:
		h, err := strconv.ParseFloat(arg, 64)
		if err != nil || h <= 0 || h > 72 {
			return errors.New("give the support window in hours, from 0.5 to 72")
		}
		a.openConsent(who, time.Duration(h*float64(time.Hour)))
		return nil
	case ActEnroll:
		return a.enroll(arg, who)
	case ActDrill:
		return a.drillNow(who, arg)
	}
	return fmt.Errorf("unknown action %q", name)
}

// enroll writes an identity onto the unknown drive in the box and adds it
// to the rotation.
func (a *Appliance) enroll(generation, who string) error {
	b := a.box
	if b == nil || !b.mounted {
		return errors.New("put the new drive in the box first")
	}
	if b.dec.Kind != rotation.UnknownDrive {
		return fmt.Errorf("the drive in the box cannot be enrolled: %s", first(b.dec.Reasons))
	}
	if b.health.Verdict == status.VerdictFailing {
		return fmt.Errorf("this drive is failing its health check (%s); use a new drive", first(b.health.Reasons))
	}
	dir, err := b.dev.Mount(a.runCtx, true)
	if err != nil {
		return fmt.Errorf("the drive cannot be written: %v", err)
	}
	var raw [6]byte
	rand.Read(raw[:])
	id := rotation.DriveID("drive-" + hex.EncodeToString(raw[:]))
	ident := rotation.Identity{ID: id, FSUUID: b.id.FSUUID, Serial: b.id.Serial}
	ident.Signature = a.key.SignDrive(ident)
	// The rotation decides first, so a refused enrollment writes nothing.
	next, dec := a.policy.Decide(a.rot, rotation.Event{Kind: rotation.Enroll, Identity: ident, Generation: generation, Capacity: b.info.Capacity, Who: who}, a.cfg.Now())
	if dec.Kind == rotation.Rejected {
		b.dev.Mount(a.runCtx, false)
		return errors.New(first(dec.Reasons))
	}
	_ = next
	if err := writeIdentity(dir, id, ident.Signature); err != nil {
		return fmt.Errorf("the identity could not be written to the drive: %v", err)
	}
	dec = a.decide(rotation.Event{Kind: rotation.Enroll, Identity: ident, Generation: generation, Capacity: b.info.Capacity, Who: who})
	b.id, b.dec, b.dir, b.oldSigned = ident, dec, dir, false
	if dec.Write {
		a.startWriting(a.runCtx, b, "new drive enrolled")
	} else {
		b.activity = status.Idle
	}
	return nil
}
