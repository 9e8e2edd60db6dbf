package vault

import (
	"bytes"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commitBackup uploads and commits backup 20261122T101500Z as peer, one
// file holding data, and returns the backup's directory in the vault.
func (f *fixture) commitBackup(peer string, data []byte) string {
	f.t.Helper()
	f.startBackupAs(peer, data)
	const base = "/v1/backups/20261122T101500Z"
	for name, body := range map[string][]byte{"base.tar.zst.age": data, "backup.json.age": sealedStub} {
		if code := f.do(peer, "PUT", base+"/files/"+name+"?offset=0", body, nil); code != 200 {
			f.t.Fatalf("upload %s: got %d; want 200", name, code)
		}
	}
	var p wire.Problem
	if code := f.do(peer, "POST", base+"/commit", nil, &p); code != 200 {
		f.t.Fatalf("commit: got %d %s; want 200", code, p.Error)
	}
	return filepath.Join(f.dir, "boxes", testPeers[peer].StableID, "repo", "backups", "20261122T101500Z")
}

var sealedStub = append([]byte("age-encryption.org/v1\n"), 1, 2, 3)

// One tagged box must not reach another box's namespace through a name it
// supplies: an escaped slash in a backup ID once let box2 append bytes to
// box's committed backup. Every hostile name is refused with 400 before
// any file is touched.
func TestNamesCannotLeaveTheNamespace(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	victim := f.commitBackup("box:1", walBytes(5000, 4))
	before, _ := os.ReadFile(filepath.Join(victim, "backup.json.age"))
	f.createRepo("box2:1")
	escape := "x%2F..%2F..%2F..%2F..%2FnBOX1%2Frepo%2Fbackups%2F20261122T101500Z"
	long := strings.Repeat("1", 300)
	for _, tc := range []struct {
		name, peer, method, target string
	}{
		{"escaped ID appends to another box's backup", "box2:1", "PUT", "/v1/backups/" + escape + "/files/backup.json.age?offset=25"},
		{"escaped ID reads progress", "box2:1", "GET", "/v1/backups/" + escape},
		{"escaped ID commits", "box2:1", "POST", "/v1/backups/" + escape + "/commit"},
		{"escaped ID begins", "box2:1", "PUT", "/v1/backups/" + escape + "/meta"},
		{"dot-dot ID", "box2:1", "GET", "/v1/backups/..%2F20261122T101500Z"},
		{"NUL in ID", "box2:1", "GET", "/v1/backups/20261122T101500Z%00"},
		{"over-long ID", "box2:1", "GET", "/v1/backups/20261122T101500Z-" + long},
		{"escaped file name", "box:1", "PUT", "/v1/backups/20261122T101500Z/files/..%2F..%2Fclinicbox-repo.json?offset=0"},
		{"hidden file name", "box:1", "PUT", "/v1/backups/20261122T101500Z/files/.tmp-base.age?offset=0"},
		{"backslash in file name", "box:1", "PUT", "/v1/backups/20261122T101500Z/files/a%5Cb.age?offset=0"},
		{"over-long file name", "box:1", "PUT", "/v1/backups/20261122T101500Z/files/" + long + ".age?offset=0"},
		{"escaped history timeline", "box:1", "PUT", "/v1/wal/history/..%2F2"},
		{"escaped repository path", "restore:1", "GET", "/v1/files/backups%2F..%2F..%2F..%2FnBOX2%2Frepo%2Fclinicbox-repo.json?box=nBOX1"},
		{"hidden repository path", "restore:1", "GET", "/v1/files/backups/.incomplete-x/backup.json?box=nBOX1"},
		{"dot-dot namespace", "restore:1", "GET", "/v1/files?box=..%2FnBOX1"},
		{"NUL namespace", "restore:1", "GET", "/v1/files?box=nBOX1%00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p wire.Problem
			code := f.do(tc.peer, tc.method, tc.target, []byte("appended by another box"), &p)
			if code != 400 || p.Code != "bad_name" || p.Error == "" {
				t.Errorf("got %d %q (%s); want 400 bad_name with a reason", code, p.Code, p.Error)
			}
		})
	}
	after, _ := os.ReadFile(filepath.Join(victim, "backup.json.age"))
	if !bytes.Equal(before, after) {
		t.Errorf("box's committed backup.json.age changed from %d to %d bytes", len(before), len(after))
	}
}
