package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// With a bucket, the moves live there, one object per move under
// movesPrefix, numbered from 1 and each written with PutIfAbsent: two nodes
// accepting moves at once cannot both write the same number, so every node
// reads the same moves in the same order, and a vault rebuilt from the
// bucket keeps them. moves.json stays the node's own copy. A node reads
// the bucket's moves at start and whenever it takes a namespace's lease,
// before it serves the box; a move is accepted only by the node holding
// the lease of the namespace it moves. So a node that was away while a
// move was made elsewhere learns of it before the old identity can write.

// movesPrefix holds the moves in the bucket; a namespace's name has no dot,
// so no namespace can be called so.
const movesPrefix = "vault.moves/"

// maxMoveObject bounds one move's object: a few names, two times and an
// Ed25519 signature.
const maxMoveObject = 16 << 10

func moveKey(n int) string { return fmt.Sprintf("%s%010d.json", movesPrefix, n) }

// readBucketMoves reads the bucket's moves in order, refusing a gap in
// their numbers or a record that does not parse.
func readBucketMoves(ctx context.Context, st store.Store) ([]moveRecord, error) {
	var keys []string
	err := st.List(ctx, movesPrefix, func(fi store.Info) error {
		if len(keys) >= maxMoves {
			return fmt.Errorf("more than %d moves", maxMoves)
		}
		keys = append(keys, fi.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vault: the moves in the bucket: %w", err)
	}
	list := make([]moveRecord, 0, len(keys))
	for i, key := range keys {
		if key != moveKey(i+1) {
			return nil, fmt.Errorf("vault: the moves in the bucket: %s is missing (found %s); restore it from the nodes' moves.json", moveKey(i+1), key)
		}
		data, err := store.ReadAll(ctx, st, key, maxMoveObject)
		if err != nil {
			return nil, fmt.Errorf("vault: the moves in the bucket: %w", err)
		}
		var r moveRecord
		if err := json.Unmarshal(data, &r); err != nil || checkNamespace(r.From) != nil || checkNamespace(r.To) != nil {
			return nil, fmt.Errorf("vault: the moves in the bucket: %s is not a move (%v)", key, err)
		}
		list = append(list, r)
	}
	return list, nil
}

// putMove stores r as the bucket's move number n; store.ErrExists means
// another node stored that number first.
func putMove(ctx context.Context, st store.Store, n int, r moveRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = st.PutIfAbsent(ctx, moveKey(n), bytes.NewReader(data), int64(len(data)))
	return err
}

func sameMove(a, b moveRecord) bool {
	return bytes.Equal(a.Signature, b.Signature) && a.From == b.From && a.To == b.To
}

// syncBucket makes the moves those of the bucket, first storing there the
// moves only moves.json holds (a vault that had no bucket before), and
// keeps moves.json a copy. m.mu is held.
func (m *moves) syncBucket(ctx context.Context, st store.Store) error {
	remote, err := readBucketMoves(ctx, st)
	if err != nil {
		return err
	}
	for _, r := range m.list {
		if slices.ContainsFunc(remote, func(x moveRecord) bool { return sameMove(x, r) }) {
			continue
		}
		if err := putMove(ctx, st, len(remote)+1, r); err != nil {
			return fmt.Errorf("vault: store the move %s -> %s in the bucket: %w", r.From, r.To, err)
		}
		remote = append(remote, r)
	}
	if slices.EqualFunc(remote, m.list, sameMove) {
		return nil
	}
	if err := m.save(remote); err != nil {
		return err
	}
	m.list = remote
	return nil
}

// save writes list to moves.json durably.
func (m *moves) save(list []moveRecord) error {
	data, err := json.MarshalIndent(list, "", " ")
	if err != nil {
		return err
	}
	if err := archive.SaveFile(m.path, append(data, '\n')); err != nil {
		return fmt.Errorf("vault: record the moves: %w", err)
	}
	return nil
}

// sync reads the bucket's moves, when the vault has a bucket.
func (m *moves) sync(ctx context.Context) error {
	if m.bucket == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncBucket(ctx, m.bucket)
}

// addToBucket stores r as the bucket's next move, after check passed on
// every move the bucket holds; a number another node took first is read
// and checked again.
func (m *moves) addToBucket(ctx context.Context, r moveRecord, check func(list []moveRecord) error) error {
	for range 5 {
		if err := m.syncBucket(ctx, m.bucket); err != nil {
			return err
		}
		if err := check(m.list); err != nil {
			return err
		}
		if len(m.list) >= maxMoves {
			return problem("quota", "the vault holds %d moves, its limit", len(m.list))
		}
		err := putMove(ctx, m.bucket, len(m.list)+1, r)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("vault: record the move in the bucket: %w", err)
		}
		list := append(m.list[:len(m.list):len(m.list)], r)
		if err := m.save(list); err != nil {
			return err
		}
		m.list = list
		return nil
	}
	return problem("moved", "other vault nodes kept recording moves; ask again")
}
