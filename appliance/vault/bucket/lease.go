package bucket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// A lease makes one vault node the only writer of a box's namespace: an
// object NS/vault-lease naming the node and when its hold runs out,
// created with If-None-Match and renewed or taken over with If-Match on
// the ETag read. Of two nodes racing, the store lets exactly one write
// win. A holder that was paused past its expiry finds, at its next
// renewal, that the ETag changed: it has lost the namespace and must stop
// writing before anything else. Times are passed in.

// Lease is a node's hold on a namespace.
type Lease struct {
	NS      string    `json:"-"`
	Node    string    `json:"node"`
	Expires time.Time `json:"expires"`
	// From is the node that held the lease before this acquisition
	// (itself when it took its own lease again); empty for a new lease.
	// A node taking over from another must read the namespace back from
	// the bucket before writing it: its own copy is stale.
	From string `json:"-"`
	etag string
}

// ErrHeld: another node holds the namespace's lease and it has not
// expired.
var ErrHeld = errors.New("bucket: another vault node holds this box's lease")

// ErrLost: the lease was taken over (it expired while its holder was
// paused or cut off); the holder must stop writing the namespace.
var ErrLost = errors.New("bucket: the lease was taken over; stop writing this box's namespace")

const maxLease = 4 << 10

// LeaseName is the lease object's name in its namespace. It is the
// bucket's alone: no copy of it goes into a vault node's directory or
// back into the bucket.
const LeaseName = "vault-lease"

func leaseKey(ns string) string { return path.Join(ns, LeaseName) }

// Acquire takes the namespace's lease for node until now+ttl: a new one,
// or one that expired. It returns ErrHeld while another node's lease runs.
func (b *Bucket) Acquire(ctx context.Context, ns, node string, now time.Time, ttl time.Duration) (*Lease, error) {
	l := &Lease{NS: ns, Node: node, Expires: now.Add(ttl).UTC()}
	cur, err := b.readLease(ctx, ns)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return l, b.writeLease(ctx, l, "", ErrHeld)
	case err != nil:
		return nil, err
	case cur.Node != node && now.Before(cur.Expires):
		return nil, fmt.Errorf("%w (%s, until %s)", ErrHeld, cur.Node, cur.Expires.Format(time.RFC3339))
	}
	l.From = cur.Node
	return l, b.writeLease(ctx, l, cur.etag, ErrHeld)
}

// Renew extends a held lease to now+ttl; ErrLost means another node took
// it over since.
func (b *Bucket) Renew(ctx context.Context, l *Lease, now time.Time, ttl time.Duration) error {
	next := *l
	next.Expires = now.Add(ttl).UTC()
	if err := b.writeLease(ctx, &next, l.etag, ErrLost); err != nil {
		return err
	}
	*l = next
	return nil
}

func (b *Bucket) readLease(ctx context.Context, ns string) (*Lease, error) {
	fi, err := b.st.Stat(ctx, leaseKey(ns))
	if err != nil {
		return nil, err
	}
	data, err := store.ReadAll(ctx, b.st, leaseKey(ns), maxLease)
	if err != nil {
		return nil, err
	}
	var l Lease
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("bucket: lease of %s: %w; delete %s to free it", ns, err, leaseKey(ns))
	}
	// The ETag is the one seen before the read: if the object changed in
	// between, the conditional write fails and nothing is decided on a
	// stale read.
	l.etag = fi.ETag
	return &l, nil
}

// writeLease writes l, creating it when etag is empty; a lost race is
// reported as lost.
func (b *Bucket) writeLease(ctx context.Context, l *Lease, etag string, lost error) error {
	data, _ := json.Marshal(l)
	var fi store.Info
	var err error
	if etag == "" {
		fi, err = b.st.PutIfAbsent(ctx, leaseKey(l.NS), bytes.NewReader(data), int64(len(data)))
	} else {
		fi, err = b.st.PutIfMatch(ctx, leaseKey(l.NS), bytes.NewReader(data), int64(len(data)), etag)
	}
	if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return lost
	}
	if err != nil {
		return fmt.Errorf("bucket: lease of %s: %w", l.NS, err)
	}
	l.etag = fi.ETag
	return nil
}
