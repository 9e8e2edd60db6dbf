package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// Several vault nodes can share one bucket. Each box's namespace then has
// one writer at a time, the node holding its lease (bucket.Lease): a
// node takes the lease when the box first calls on it, renews it while
// the box streams, and writes the namespace, in its directory and in the
// bucket, only while the lease runs on its own clock, less a margin for
// the clocks of the nodes to differ. A node that finds its lease taken
// over answers the box "moved" (503) at once, and the box reconnects; a
// node taking a box over from another reads the namespace back from the
// bucket before it acknowledges anything, so it continues from exactly
// what the bucket holds. Every write into the bucket is preceded by a
// renewal, a conditional write on the lease's ETag, and carries a
// deadline at the lease's local end, so a node paused past its lease
// finds it lost before it writes.

// DefaultLeaseTTL is how long a lease runs without renewal.
const DefaultLeaseTTL = 30 * time.Second

// held is this node's lease on one namespace.
type held struct {
	// mu serializes acquiring and renewing the lease.
	mu    sync.Mutex
	lease *bucket.Lease // nil while this node does not hold it
	// renewAfter is when (UnixNano on the vault's clock) the first write
	// renews the lease.
	renewAfter atomic.Int64
	// until is when this node stops writing the namespace, on its own
	// clock: the lease's end less the margin, counted from before the
	// write that took or renewed it. Read without mu, under a box's lock.
	until atomic.Pointer[time.Time]
	// renewing is set while a renewal runs on the side.
	renewing atomic.Bool
}

// leased reports whether the vault shares its bucket with other nodes and
// takes leases.
func (v *Vault) leased() bool { return v.cfg.Bucket != nil && v.cfg.Node != "" }

func (v *Vault) leaseTTL() time.Duration {
	if v.cfg.LeaseTTL > 0 {
		return v.cfg.LeaseTTL
	}
	return DefaultLeaseTTL
}

func (v *Vault) heldFor(ns string) *held {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.leases[ns]
	if h == nil {
		h = &held{}
		v.leases[ns] = h
	}
	return h
}

// mayWrite reports whether this node may write ns now: always for a
// single node; with leases, while its lease runs.
func (v *Vault) mayWrite(ns string) bool {
	if !v.leased() {
		return true
	}
	u := v.heldFor(ns).until.Load()
	return u != nil && v.cfg.Now().Before(*u)
}

// writeDeadline bounds a write into the bucket by the lease's local end.
func (v *Vault) writeDeadline(ctx context.Context, ns string) (context.Context, context.CancelFunc) {
	if !v.leased() {
		return context.WithCancel(ctx)
	}
	u := v.heldFor(ns).until.Load()
	left := time.Duration(0)
	if u != nil {
		left = u.Sub(v.cfg.Now())
	}
	return context.WithDeadline(ctx, time.Now().Add(left))
}

// errMoved answers a box whose namespace another node writes.
func errMoved(ns string, err error) error {
	return problem("moved", "namespace %s moved: this vault node does not hold it now (%v); reconnect, to another vault node if this one keeps answering so", ns, err)
}

// hold makes sure this node holds ns's lease before a box's request:
// renewed once half of it ran, or acquired, reading the namespace back
// from the bucket when another node wrote it last.
func (v *Vault) hold(ctx context.Context, ns string) error {
	if !v.leased() {
		return nil
	}
	h := v.heldFor(ns)
	if v.mayWrite(ns) {
		// Renewed on the side once half of it ran: a box's record does
		// not wait for the bucket while the lease runs.
		if v.cfg.Now().UnixNano() >= h.renewAfter.Load() && h.renewing.CompareAndSwap(false, true) {
			go v.renewDue(context.WithoutCancel(ctx), ns, h)
		}
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if v.mayWrite(ns) {
		return nil // taken or renewed by a request that held mu before
	}
	now := v.cfg.Now()
	if h.lease != nil {
		err := v.renew(ctx, ns, h, now)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, bucket.ErrLost) && v.mayWrite(ns):
			return nil // the bucket is out of reach; the lease still runs
		case !errors.Is(err, bucket.ErrLost):
			return err
		}
	}
	l, err := v.cfg.Bucket.Acquire(ctx, ns, v.cfg.Node, now, v.leaseTTL())
	if errors.Is(err, bucket.ErrHeld) {
		return errMoved(ns, err)
	}
	if err != nil {
		return fmt.Errorf("vault: lease of %s: %w", ns, err)
	}
	// Moves made on another node while this one did not hold the lease.
	if err := v.moves.sync(ctx); err != nil {
		return err
	}
	if err := v.takeOver(ctx, ns, l.From); err != nil {
		return err
	}
	h.lease = l
	v.granted(h, now)
	v.log.Info("lease taken", "op", "lease", "namespace", ns, "from", l.From)
	return nil
}

// holdResolved holds the lease of the namespace the caller writes, as the
// moves read when the lease was taken name it: a move made on another node
// can turn the caller away or send it to the namespace moved to it.
func (v *Vault) holdResolved(ctx context.Context, c *caller) error {
	for range 2 {
		if err := v.hold(ctx, c.ns); err != nil {
			return err
		}
		ns, err := v.moves.resolve(c.id)
		if err != nil {
			return problem("forbidden", "%v", err)
		}
		if ns == c.ns {
			return nil
		}
		c.ns = ns
	}
	return v.hold(ctx, c.ns)
}

// current makes sure a read of ns is served from what the bucket holds.
// With leases a node serves a namespace only while it holds its lease:
// its directory may be stale, another node having written the namespace
// since. It takes over a namespace whose lease nobody holds, reading it
// back from the bucket first as for a box's write, and answers "moved",
// naming the holder, while another node's lease runs.
func (v *Vault) current(ctx context.Context, ns string) error {
	if !v.leased() || v.mayWrite(ns) {
		return nil
	}
	_, err := os.Stat(filepath.Join(v.cfg.Dir, "boxes", ns, "repo", "clinicbox-repo.json"))
	if err != nil {
		// Taking a lease for a name neither here nor in the bucket would
		// leave a lease object for any name a reader asks for.
		_, err = v.cfg.Bucket.Store().Stat(ctx, ns+"/clinicbox-repo.json")
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return problem("not_found", "no repository in namespace %s", ns)
	}
	if err != nil {
		return fmt.Errorf("vault: namespace %s in the bucket: %w", ns, err)
	}
	return v.hold(ctx, ns)
}

// renewDue renews a held lease once half of it ran; a failure is left to
// the next write, which finds the lease run out.
func (v *Vault) renewDue(ctx context.Context, ns string, h *held) {
	defer h.renewing.Store(false)
	ctx, cancel := context.WithTimeout(ctx, v.leaseTTL()/2)
	defer cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	now := v.cfg.Now()
	if h.lease == nil || now.UnixNano() < h.renewAfter.Load() {
		return
	}
	if err := v.renew(ctx, ns, h, now); err != nil && !errors.Is(err, bucket.ErrLost) {
		v.log.Warn("lease renewal", "op", "lease", "namespace", ns, "err", err)
	}
}

// renew extends a held lease; h.mu is held. A lost lease is forgotten.
func (v *Vault) renew(ctx context.Context, ns string, h *held, now time.Time) error {
	err := v.cfg.Bucket.Renew(ctx, h.lease, now, v.leaseTTL())
	switch {
	case err == nil:
		v.granted(h, now)
	case errors.Is(err, bucket.ErrLost):
		v.log.Warn("lease lost", "op", "lease", "namespace", ns)
		h.lease = nil
		h.until.Store(nil)
	default:
		err = fmt.Errorf("vault: renew the lease of %s: %w", ns, err)
	}
	return err
}

// granted records a lease taken or renewed at now.
func (v *Vault) granted(h *held, now time.Time) {
	ttl := v.leaseTTL()
	until := now.Add(ttl - ttl/5)
	h.renewAfter.Store(now.Add(ttl / 2).UnixNano())
	h.until.Store(&until)
}

// fence renews the lease of a namespace this node held before writing it
// into the bucket; false means the node does not hold it (never took it,
// or another node took it over) and must not write.
func (v *Vault) fence(ctx context.Context, ns string) (bool, error) {
	if !v.leased() {
		return true, nil
	}
	h := v.heldFor(ns)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lease == nil {
		return false, nil
	}
	err := v.renew(ctx, ns, h, v.cfg.Now())
	if errors.Is(err, bucket.ErrLost) {
		return false, nil
	}
	return err == nil, err
}

// takeOver makes the namespace's directory what the bucket holds when
// another node wrote the namespace last (from names it), or when the
// directory holds no repository: the directory is moved aside, never
// deleted (it may hold WAL acknowledged by this node and never stored in
// the bucket), and the namespace is read back from the bucket.
func (v *Vault) takeOver(ctx context.Context, ns, from string) error {
	dir := filepath.Join(v.cfg.Dir, "boxes", ns)
	_, err := os.Stat(filepath.Join(dir, "repo", "clinicbox-repo.json"))
	local := err == nil
	if local && (from == "" || from == v.cfg.Node) {
		return nil
	}
	st := v.cfg.Bucket.Store()
	if _, err := st.Stat(ctx, ns+"/clinicbox-repo.json"); errors.Is(err, store.ErrNotFound) && !local {
		return nil // a new box: nothing to read back
	}
	if err := v.setAside(ns, dir); err != nil {
		return err
	}
	n, err := v.Rehydrate(ctx, st, ns)
	if err != nil {
		return err
	}
	v.log.Info("namespace read back from the bucket", "op", "lease", "namespace", ns, "from", from, "files", n)
	return nil
}

// setAside moves a namespace's directory to boxes/.stale, closing it if
// it is open.
func (v *Vault) setAside(ns, dir string) error {
	v.mu.Lock()
	if b := v.boxes[ns]; b != nil {
		b.mu.Lock()
		b.root.Close()
		b.repo = nil
		b.mu.Unlock()
		delete(v.boxes, ns)
	}
	v.mu.Unlock()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	stale := filepath.Join(v.cfg.Dir, "boxes", staleDir)
	if err := os.MkdirAll(stale, 0o755); err != nil {
		return fmt.Errorf("vault: take over %s: %w", ns, err)
	}
	// Named by the vault's clock, from which DropStale counts StaleGrace.
	at := v.cfg.Now()
	to := filepath.Join(stale, staleName(ns, at))
	for i := 0; i < 1000 && exists(to); i++ {
		at = at.Add(time.Nanosecond)
		to = filepath.Join(stale, staleName(ns, at))
	}
	if err := os.Rename(dir, to); err != nil {
		return fmt.Errorf("vault: take over %s: %w", ns, err)
	}
	v.log.Warn("namespace directory set aside: another vault node wrote it since", "op", "lease", "namespace", ns, "dir", to)
	boxes, err := os.OpenRoot(filepath.Join(v.cfg.Dir, "boxes"))
	if err != nil {
		return err
	}
	defer boxes.Close()
	return syncRootDir(boxes, ".")
}

// exists reports whether anything is at p.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
