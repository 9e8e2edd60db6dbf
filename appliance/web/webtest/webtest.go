// Package webtest is a fake box for the web pages (box step of the data
// path): a realistic status document (three drives, a swap due, a week of
// lag history, a month and a half of custody log), actions that change it
// the way the appliance would, and simulated drives to plug and unplug.
package webtest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// Box is a fake box. Its methods are safe for concurrent use.
type Box struct {
	// Now stamps what the box does; nil means time.Now.
	Now func() time.Time

	sealer chain.Sealer
	hist   status.History

	mu   sync.Mutex
	st   status.Status
	log  *rotation.Log
	acts []web.Action
	// refuse maps action names to the error Act returns for them.
	refuse map[string]error
}

var (
	_ web.Box       = (*Box)(nil)
	_ web.Simulator = (*Box)(nil)
)

// Drive IDs of the three fake drives, by generation.
var IDs = map[string]rotation.DriveID{
	"Son":         "d-5a1e-son",
	"Father":      "d-8c42-father",
	"Grandfather": "d-e07b-grandfather",
}

// New returns a box as of now: Son in the box for a week and due to be
// swapped, Father and Grandfather offsite with Grandfather expected next,
// backups verified, a drill passed, the offsite link up.
func New(now time.Time) *Box {
	b := &Box{sealer: chain.HMACSealer([]byte("webtest box key")), refuse: map[string]error{}}
	b.st = realistic(now)
	log, err := rotation.NewLog(nil, b.sealer)
	if err != nil {
		panic(err) // an empty log always verifies
	}
	b.log = log
	for _, e := range custodyHistory(now) {
		b.log.Append(e)
	}
	b.st.Swap.Recent = b.recent()
	for _, s := range lagHistory(now) {
		b.hist.Add(s)
	}
	return b
}

// Sealer is the key the fake custody log is sealed with; pass it to
// web.Config.
func (b *Box) Sealer() chain.Sealer { return b.sealer }

func (b *Box) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Status returns the status document, stamped now.
func (b *Box) Status() status.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.st
	st.Time = b.now()
	st.Conditions = slices.Clone(st.Conditions)
	st.Drives = slices.Clone(st.Drives)
	return st
}

// History returns lag samples since t.
func (b *Box) History(since time.Time) []status.Sample { return b.hist.Since(since) }

// Custody returns a copy of the custody log.
func (b *Box) Custody() ([]rotation.Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log.Entries()), nil
}

// Update changes the status document under the box's lock.
func (b *Box) Update(f func(*status.Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.st)
}

// Refuse makes Act fail for the named action with err (nil to stop).
func (b *Box) Refuse(action string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refuse[action] = err
}

// Acts returns the actions performed so far, oldest first.
func (b *Box) Acts() []web.Action {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.acts)
}

// Act records the action and changes the status as the appliance would.
func (b *Box) Act(ctx context.Context, a web.Action) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.refuse[a.Name]; err != nil {
		return err
	}
	now := b.now()
	switch a.Name {
	case web.ActAcknowledge:
		for i := range b.st.Conditions {
			b.st.Conditions[i].Acknowledged = true
		}
		b.st.Panel.Buzzer = "silent"
	case web.ActConsent:
		h, err := strconv.ParseFloat(a.Arg, 64)
		if err != nil || h <= 0 || h > 72 {
			return errors.New("give the support window in hours, from 0.5 to 72")
		}
		b.st.Support.ConsentUntil = now.Add(time.Duration(h * float64(time.Hour)))
	case web.ActBackup:
		if b.st.InBox == nil {
			return errors.New("there is no drive in the box")
		}
		b.st.InBox.Activity, b.st.InBox.Progress = status.BackingUp, 0.01
		b.st.Panel.Green = "slow"
	case web.ActDrill, web.ActEject, web.ActEnroll:
	default:
		return fmt.Errorf("unknown action %q", a.Name)
	}
	b.acts = append(b.acts, a)
	b.st.Events = append([]status.Event{{Time: now, Kind: a.Name, Message: a.Name + " asked by " + a.By.String()}}, b.st.Events...)
	return nil
}

// Bundle writes a tar.gz holding the status document.
func (b *Box) Bundle(ctx context.Context, w io.Writer) error {
	js, err := json.MarshalIndent(b.Status(), "", "  ")
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "status.json", Mode: 0o644, Size: int64(len(js)), ModTime: b.now()}); err != nil {
		return err
	}
	if _, err := tw.Write(js); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
