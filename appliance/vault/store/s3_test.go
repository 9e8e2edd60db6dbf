package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
)

func TestS3ConfigValidate(t *testing.T) {
	good := store.S3Config{Endpoint: "https://s3.example.net", Bucket: "clinic-vault", CredentialsFile: "/etc/s3.json"}
	for _, c := range []struct {
		name string
		edit func(*store.S3Config)
		want string // in the error; empty means valid
	}{
		{"good", func(*store.S3Config) {}, ""},
		{"loopback http", func(c *store.S3Config) { c.Endpoint = "http://127.0.0.1:7070" }, ""},
		{"remote http", func(c *store.S3Config) { c.Endpoint = "http://s3.example.net" }, "use https"},
		{"no endpoint", func(c *store.S3Config) { c.Endpoint = "" }, "s3.endpoint"},
		{"endpoint with a path", func(c *store.S3Config) { c.Endpoint = "https://s3.example.net/bucket" }, "s3.endpoint"},
		{"bucket uppercase", func(c *store.S3Config) { c.Bucket = "Clinic" }, "s3.bucket"},
		{"prefix without slash", func(c *store.S3Config) { c.Prefix = "vault1" }, "s3.prefix"},
		{"no credentials", func(c *store.S3Config) { c.CredentialsFile = "" }, "s3.credentials_file"},
		{"lock mode", func(c *store.S3Config) { c.Lock = &store.ObjectLock{Mode: "forever", Days: 30} }, "s3.object_lock.mode"},
		{"lock days", func(c *store.S3Config) { c.Lock = &store.ObjectLock{Mode: "COMPLIANCE"} }, "s3.object_lock.days"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			err := cfg.Validate()
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("got %v; want an error naming %q", err, c.want)
			}
		})
	}
}

func TestS3CredentialsNeverInErrors(t *testing.T) {
	srv := storetest.StartVersityGW(t, storetest.Options{})
	cfg := srv.Config()
	bad := filepath.Join(t.TempDir(), "s3.json")
	os.WriteFile(bad, []byte(`{"access_key_id": "AKIDWRONG", "secret_access_key": "s3cr3t-never-shown"}`), 0o600)
	cfg.CredentialsFile = bad
	_, err := store.OpenS3(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), "s3cr3t-never-shown") {
		t.Errorf("got %v; want a refusal naming the credentials file and not the secret", err)
	}
	os.WriteFile(bad, []byte(`{"access_key_id": "x", "secret_access_key": "s3cr3t-never-shown", "extra": 1}`), 0o600)
	if _, err := store.OpenS3(context.Background(), cfg); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("a credentials file with an unknown field: %v; want refused without the secret", err)
	}
}

// versitygw v1.8.0's posix backend keeps Object Lock settings in extended
// attributes of the directory it serves; this shows retention set on each
// object written and a bucket without Object Lock refused up front.
func TestS3ObjectLock(t *testing.T) {
	ctx := context.Background()
	plain := storetest.StartVersityGW(t, storetest.Options{})
	cfg := plain.Config()
	cfg.Lock = &store.ObjectLock{Mode: "GOVERNANCE", Days: 30}
	if _, err := store.OpenS3(ctx, cfg); err == nil || !strings.Contains(err.Error(), "Object Lock") {
		t.Errorf("a bucket without Object Lock: %v; want refused, naming Object Lock", err)
	}
	locked := storetest.StartVersityGW(t, storetest.Options{ObjectLock: true})
	cfg = locked.Config()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cfg.Lock = &store.ObjectLock{Mode: "GOVERNANCE", Days: 30, Now: func() time.Time { return now }}
	st, err := store.OpenS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutIfAbsent(ctx, "ns/backups/b1/backup.json", strings.NewReader("{}"), 2); err != nil {
		t.Fatal(err)
	}
	mode, until, err := st.Retention(ctx, "ns/backups/b1/backup.json")
	if err != nil || mode != "GOVERNANCE" || !until.Equal(now.Add(30*24*time.Hour)) {
		t.Errorf("retention: %q until %v, %v; want GOVERNANCE until %v", mode, until, err, now.Add(30*24*time.Hour))
	}
	if err := st.Delete(ctx, "ns/backups/b1/backup.json"); err == nil {
		if _, serr := st.Stat(ctx, "ns/backups/b1/backup.json"); serr != nil {
			t.Errorf("a locked object was deleted (stat after delete: %v)", serr)
		}
	}
}
