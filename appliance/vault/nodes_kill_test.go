package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// nodesRig is two clinicvault processes sharing a bucket on a real
// versitygw, which they reach through a gate that can stop a write
// halfway, and a box on the tailnet streaming to them.
type nodesRig struct {
	t      *testing.T
	srv    *storetest.Server
	gate   *s3Gate
	st     store.Store // the bucket, read directly by the test
	f      *fixture    // the box's keys and sealer
	a, b   *vaultProc
	ra, rb *remote // the nodes as the box reaches them
	box    *streamer
	ns     string // the box's namespace
}

func newNodesRig(t *testing.T) *nodesRig {
	srv := storetest.StartVersityGW(t, storetest.Options{})
	r := &nodesRig{t: t, srv: srv, gate: newS3Gate(t, srv.Addr), st: srv.Open(t), f: newFixture(t), box: &streamer{t: t}}
	cfg := srv.Config()
	cfg.Endpoint = r.gate.url
	tn := tailnettest.New(t)
	boxNode := tn.Node(t, "box", "tag:clinicbox")
	r.a = startVaultProc(t, "vault-a", tn.ControlURL, cfg)
	r.b = startVaultProc(t, "vault-b", tn.ControlURL, cfg)
	r.ra = &remote{t: t, box: boxNode, url: "http://vault-a:8443", sealer: r.f.sealer}
	r.rb = &remote{t: t, box: boxNode, url: "http://vault-b:8443", sealer: r.f.sealer}
	var who struct{ Namespace string }
	until(t, "vault-a to answer the box", func() bool { return r.ra.do("", "GET", "/v1/whoami", nil, &who) == 200 })
	until(t, "vault-b to answer the box", func() bool { return r.rb.do("", "GET", "/v1/whoami", nil, nil) == 200 })
	r.ns = who.Namespace
	info, _ := json.Marshal(r.f.info)
	if code := r.ra.do("", "PUT", "/v1/repo", info, nil); code != 200 {
		t.Fatalf("create the repository on vault-a: %d", code)
	}
	return r
}

// held waits for the gate to stop the write it was armed for.
func (r *nodesRig) held(what string) string {
	r.t.Helper()
	select {
	case p := <-r.gate.held:
		return p
	case <-time.After(testenv.Patience(r.t)):
		r.t.Fatalf("timed out waiting for %s; the bucket saw:\n%s", what, strings.Join(r.gate.requests(0), "\n"))
		return ""
	}
}

// moveTo sends the box's WAL to node until it takes the namespace over
// (it answers "moved" while the dead node's lease runs) and acknowledges
// n more bytes from where it stands.
func (r *nodesRig) moveTo(node *remote, n int) {
	r.t.Helper()
	until(r.t, node.url+" to take the box over", func() bool { return r.box.send(node, n) == 200 })
}

// bucketHolds waits until the bucket holds every byte the box was
// acknowledged, once and in order.
func (r *nodesRig) bucketHolds() {
	r.t.Helper()
	until(r.t, fmt.Sprintf("the bucket to hold the %d bytes of WAL acknowledged", r.box.sent), func() bool {
		got, err := bucketWAL(r.t, r.f, r.st, r.ns, r.box.sent)
		if errors.Is(err, errWALDiffers) {
			r.t.Fatal(err)
		}
		return err == nil && got == r.box.sent
	})
}

// bucketBytes is how many bytes of acknowledged WAL the bucket holds.
func (r *nodesRig) bucketBytes() int {
	r.t.Helper()
	got, err := bucketWAL(r.t, r.f, r.st, r.ns, r.box.sent)
	if errors.Is(err, errWALDiffers) {
		r.t.Fatal(err)
	}
	return got
}

// Two clinicvault processes share one bucket on a real versitygw; a box
// on the tailnet streams WAL and sends a base backup. The node holding
// the box's namespace is SIGKILLed in the middle of a journal flush (a
// batch of WAL half sent to the bucket), later the other node in the
// middle of a multipart backup upload (part 2 half sent); each time a
// node takes the namespace over once the dead node's lease runs out and
// the box finishes there. Then versitygw is killed and left down until
// the node refuses the box's WAL, and started again. Every WAL byte the
// box was acknowledged ends up in the bucket once, byte-exact; the
// half-written backup is never visible, and its upload is resumed from
// the parts stored, not begun again.
func TestVaultNodesKilledMidWrite(t *testing.T) {
	r := newNodesRig(t)
	t.Run("killed mid journal flush", r.killMidFlush)
	if t.Failed() {
		return
	}
	t.Run("killed mid multipart upload", r.killMidMultipart)
	if t.Failed() {
		return
	}
	t.Run("S3 server restarted", r.serverDown)
}

// killMidFlush: vault-a flushed a first batch of the growing segment;
// the box is acknowledged three more records; a's flush of them is
// stopped halfway into the bucket and a is killed. vault-b takes over
// from what the bucket holds, the box sends the rest again and more.
func (r *nodesRig) killMidFlush(t *testing.T) {
	r.t = t
	if code := r.box.send(r.ra, 5*recordSize); code != 200 {
		t.Fatalf("streaming to vault-a: %d", code)
	}
	until(t, "vault-a's first batch of WAL in the bucket", func() bool { return r.bucketBytes() > 0 })
	r.gate.arm(func(q *http.Request) bool {
		return q.Method == "PUT" && strings.Contains(q.URL.Path, "/wal/") && strings.Contains(q.URL.Path, ".partial/")
	})
	if code := r.box.send(r.ra, 3*recordSize); code != 200 {
		t.Fatalf("streaming to vault-a: %d", code)
	}
	acked := r.box.sent
	t.Logf("vault-a killed while it sent %s", r.held("vault-a's next flush"))
	r.a.kill()
	r.gate.open()
	if got := r.bucketBytes(); got >= acked {
		t.Fatalf("the bucket holds %d bytes, all %d acknowledged: the kill did not cut a flush", got, acked)
	}
	r.moveTo(r.rb, segSize)
	r.bucketHolds()
}

// backupID is the backup the box sends.
const backupID = "20261204T101500Z"

// sendBackup uploads a backup of one file holding data to node in chunks
// of 4 MiB and commits it, as the box's offsite upload does.
func (r *nodesRig) sendBackup(node *remote, data []byte) {
	r.t.Helper()
	sum := sha256.Sum256(data)
	meta, _ := json.Marshal(archive.Backup{ID: backupID, SystemID: r.f.info.SystemID,
		Files: []archive.StoredFile{{Name: "base.tar.zst.age", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}}})
	base := "/v1/backups/" + backupID
	if code := node.do("", "PUT", base+"/meta", meta, nil); code != 200 {
		r.t.Fatalf("backup meta to %s: %d", node.url, code)
	}
	for off := 0; off < len(data); off += 4 << 20 {
		chunk := data[off:min(len(data), off+4<<20)]
		if code := node.do("", "PUT", fmt.Sprintf("%s/files/base.tar.zst.age?offset=%d", base, off), chunk, nil); code != 200 {
			r.t.Fatalf("backup file to %s at %d: %d", node.url, off, code)
		}
	}
	sealedMeta := append([]byte("age-encryption.org/v1\n"), 1, 2, 3)
	if code := node.do("", "PUT", base+"/files/backup.json.age?offset=0", sealedMeta, nil); code != 200 {
		r.t.Fatalf("backup.json.age to %s: %d", node.url, code)
	}
	var bp wire.BackupProgress
	if code := node.do("", "POST", base+"/commit", nil, &bp); code != 200 || !bp.Complete {
		r.t.Fatalf("commit on %s: %d %+v", node.url, code, bp)
	}
}

// killMidMultipart: the box sends vault-b a backup of two 16 MiB parts;
// b's upload into the bucket is stopped halfway through part 2 and b is
// killed. vault-a, restarted on its old directory, takes over; the box
// sends the backup the namespace lacks again and a's upload continues
// from the part stored.
func (r *nodesRig) killMidMultipart(t *testing.T) {
	r.t = t
	ctx := context.Background()
	data := walBytes(20<<20, 9)
	r.gate.arm(func(q *http.Request) bool { return q.Method == "PUT" && q.URL.Query().Get("partNumber") == "2" })
	r.sendBackup(r.rb, data)
	t.Logf("vault-b killed while it sent %s", r.held("vault-b's upload of part 2"))
	r.b.kill()
	r.gate.open()
	bk := bucket.New(r.st)
	if ids, err := bk.Backups(ctx, r.ns); err != nil || len(ids) != 0 {
		t.Fatalf("backups in the bucket after the kill: %v (%v); want none", ids, err)
	}
	if ups, err := r.st.ListUploads(ctx, r.ns+"/"); err != nil || len(ups) != 1 {
		t.Fatalf("uploads begun in the bucket after the kill: %+v (%v); want the one cut off", ups, err)
	}
	mark := len(r.gate.requests(0))
	r.a.start()
	until(t, "vault-a to answer again", func() bool { return r.ra.do("", "GET", "/v1/whoami", nil, nil) == 200 })
	r.moveTo(r.ra, recordSize)
	r.sendBackup(r.ra, data)
	until(t, "the backup committed in the bucket", func() bool {
		ids, _ := bk.Backups(ctx, r.ns)
		return len(ids) == 1 && ids[0] == backupID
	})
	for _, q := range r.gate.requests(mark) {
		if strings.HasPrefix(q, "PUT ") && (strings.Contains(q, "partNumber=1&") || strings.HasSuffix(q, "partNumber=1")) {
			t.Errorf("vault-a sent part 1 again (%s); want the upload resumed from the part stored", q)
		}
	}
	stored, err := store.ReadAll(ctx, r.st, path.Join(r.ns, "backups", backupID, "base.tar.zst.age"), 21<<20)
	if err != nil || !bytes.Equal(stored, data) {
		t.Errorf("the backup's file in the bucket: %d bytes (%v), differing from the %d sent", len(stored), err, len(data))
	}
	if ups, err := r.st.ListUploads(ctx, r.ns+"/"); err != nil || len(ups) != 0 {
		t.Errorf("uploads left in the bucket: %+v (%v); want none", ups, err)
	}
	r.bucketHolds()
}

// serverDown: versitygw is killed while the box streams to vault-a, which
// acknowledges from its disk until its lease, which it cannot renew,
// runs out, then refuses; the box keeps what was refused. versitygw
// starts again; a renews, the box catches up, a's offload too.
func (r *nodesRig) serverDown(t *testing.T) {
	r.t = t
	r.srv.Kill()
	until(t, "vault-a to refuse WAL while the bucket is out of reach", func() bool { return r.box.send(r.ra, recordSize) != 200 })
	t.Logf("vault-a refused WAL at %d bytes acknowledged", r.box.sent)
	r.srv.Start()
	r.moveTo(r.ra, segSize)
	r.bucketHolds()
}
