package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// rehydrateGrowing rebuilds each segment the bucket holds only as flushed
// batches (the one being filled when the last writer stopped): its file
// from the batches that continue each other from its start and record
// how much WAL they hold, its index with one entry per batch. Batches
// past those (never acknowledged as stored, or written by a node that had
// lost the lease) are deleted, so that the box sends that WAL again and
// the next flush continues from what is rebuilt here.
func (v *Vault) rehydrateGrowing(ctx context.Context, st store.Store, root *os.Root, ns string, keys []store.Info) error {
	info, err := bucketInfo(ctx, st, ns)
	if err != nil {
		return err
	}
	whole := map[string]bool{}
	for _, fi := range keys {
		whole[fi.Key] = true
	}
	growing := map[string]bool{}
	err = st.List(ctx, ns+"/wal/", func(fi store.Info) error {
		if i := strings.LastIndex(fi.Key, ".partial/"); i > 0 && !whole[fi.Key[:i]] {
			growing[strings.TrimPrefix(fi.Key[:i], ns+"/wal/")] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name := range growing {
		if err := v.rebuildSegment(ctx, st, root, ns, name, info.SegmentSize); err != nil {
			return fmt.Errorf("segment %s: %w", name, err)
		}
	}
	return nil
}

// bucketInfo reads the namespace's repository description from the
// bucket.
func bucketInfo(ctx context.Context, st store.Store, ns string) (archive.Info, error) {
	var info archive.Info
	data, err := store.ReadAll(ctx, st, ns+"/clinicbox-repo.json", 64<<10)
	if err == nil {
		err = json.Unmarshal(data, &info)
	}
	if err == nil && (info.SegmentSize < minSegment || info.SegmentSize > maxSegment) {
		err = fmt.Errorf("the repository description gives a segment size of %d", info.SegmentSize)
	}
	return info, err
}

// rebuildSegment writes one growing segment's file and index from its
// batches.
func (v *Vault) rebuildSegment(ctx context.Context, st store.Store, root *os.Root, ns, name string, segSize uint64) error {
	tli, seg, ok := archive.ParseSegmentName(path.Base(strings.TrimSuffix(name, archive.WALPartial)), segSize)
	if !ok {
		return fmt.Errorf("not a segment's name")
	}
	bk := v.cfg.Bucket
	run, err := bk.Batches(ctx, ns, name)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	var data, idx bytes.Buffer
	var raw int64
	for _, bt := range run {
		if bt.Raw < raw || bt.Raw > int64(segSize) || bt.Raw-raw > 1<<31 || bt.Size > 1<<31 {
			break // how much WAL it holds is not recorded, or makes no sense
		}
		if err := readObject(ctx, st, bt.Key, bt.Size, &data); err != nil {
			return err
		}
		var e [indexEntry]byte
		binary.BigEndian.PutUint32(e[0:], uint32(raw))
		binary.BigEndian.PutUint32(e[4:], uint32(bt.Raw-raw))
		binary.BigEndian.PutUint32(e[8:], uint32(bt.Size))
		idx.Write(e[:])
		raw = bt.Raw
		keep[bt.Key] = true
	}
	if err := bk.DropBatches(ctx, ns, name, keep); err != nil {
		return err
	}
	if data.Len() == 0 {
		return nil
	}
	if err := root.MkdirAll(indexDir, 0o755); err != nil {
		return err
	}
	irel := indexRel(tli, seg)
	if err := writeLocal(root, irel, &idx, int64(idx.Len()), irel); err != nil {
		return err
	}
	rel := inRepo(filepath.FromSlash(path.Join("wal", name)))
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return err
	}
	return writeLocal(root, rel, &data, int64(data.Len()), name)
}

// readObject appends an object of size bytes to buf.
func readObject(ctx context.Context, st store.Store, key string, size int64, buf *bytes.Buffer) error {
	rc, err := st.Get(ctx, key, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(buf, io.LimitReader(rc, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("%s: got %d bytes, listed with %d", key, n, size)
	}
	return err
}
