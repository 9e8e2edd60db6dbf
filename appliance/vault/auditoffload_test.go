package vault

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
)

// bucketAudit joins the vault's audit log back from the bucket, by file.
func bucketAudit(t *testing.T, st store.Store) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	files := map[string][]byte{}
	err := st.List(ctx, auditPrefix, func(fi store.Info) error {
		rc, err := st.Get(ctx, fi.Key, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		dir := filepath.Dir(fi.Key)
		files[dir] = append(files[dir], data...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The vault's own audit log reaches the bucket as it grows, whole lines
// only, and a node whose audit file was replaced starts a new one there
// beside the old.
func TestVaultAuditLogInTheBucket(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		f := newFixture(t)
		f.cfg.Bucket = bucket.New(st)
		f.open()
		f.createRepo("box:1")
		f.offload()
		f.do("support:1", "GET", "/v1/logs/heads?box=nBOX1", nil, nil)
		f.do("box2:1", "GET", "/v1/logs/heads?box=nBOX1", nil, nil) // refused, and audited
		auditFile := filepath.Join(f.dir, "audit.jsonl")
		local, _ := os.ReadFile(auditFile)
		// An entry being appended when the pass reads the file.
		af, err := os.OpenFile(auditFile, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		af.WriteString(`{"time":"2026-12-04T16:00:00Z","action":"half`)
		af.Close()
		f.offload()
		got := bucketAudit(t, st)
		if len(got) != 1 {
			t.Fatalf("the bucket holds %d audit files; want 1", len(got))
		}
		for _, data := range got {
			if !bytes.Equal(data, local) || !bytes.Contains(data, []byte(`"status":403`)) {
				t.Errorf("the audit log in the bucket (%d bytes) is not the node's whole lines (%d bytes):\n%s", len(data), len(local), data)
			}
		}

		os.Remove(auditFile) // the node's disk replaced
		f.open()
		f.do("support:1", "GET", "/v1/logs/heads?box=nBOX1", nil, nil)
		f.offload()
		got2 := bucketAudit(t, st)
		if len(got2) != 2 {
			t.Fatalf("after the audit file was replaced the bucket holds %d audit files; want 2", len(got2))
		}
		for dir, data := range got {
			if !bytes.Equal(got2[dir], data) || !strings.HasPrefix(dir, strings.TrimSuffix(auditPrefix, "/")) {
				t.Errorf("the first audit file in the bucket changed")
			}
		}
	})
}
