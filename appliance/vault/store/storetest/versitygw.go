// Package storetest runs the store conformance suite and starts the real
// S3-compatible server (versitygw) that tests run the S3 store against.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// Server is a versitygw serving one directory on a loopback port.
type Server struct {
	t        testing.TB
	bin      string
	Dir      string // the directory versitygw serves buckets from
	Addr     string // 127.0.0.1:port, the port versitygw chose at its first start
	Access   string
	secret   string
	Bucket   string
	CredFile string // the credentials file an S3Config names
	cmd      *exec.Cmd
	done     chan error
}

// Options choose how the server's bucket is made.
type Options struct {
	// ObjectLock creates the bucket with Object Lock enabled.
	ObjectLock bool
}

// StartVersityGW starts a versitygw over a new temporary directory with
// generated credentials and one empty bucket; it is stopped when t ends.
// It skips t (through testenv) when versitygw is not built.
func StartVersityGW(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: testenv.NeedVersityGW(t), Dir: t.TempDir(),
		Access: "vault" + random(4), secret: random(20), Bucket: "vault-" + random(4)}
	s.CredFile = filepath.Join(t.TempDir(), "s3.json")
	cred, _ := json.Marshal(map[string]string{"access_key_id": s.Access, "secret_access_key": s.secret})
	if err := os.WriteFile(s.CredFile, cred, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.client().MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{ObjectLocking: o.ObjectLock}); err != nil {
		t.Fatalf("versitygw: make bucket %s: %v", s.Bucket, err)
	}
	return s
}

// Config is the store settings that reach the server's bucket.
func (s *Server) Config() store.S3Config {
	return store.S3Config{Endpoint: "http://" + s.Addr, Bucket: s.Bucket, Region: "us-east-1", CredentialsFile: s.CredFile}
}

// Open opens the S3 store on the server's bucket.
func (s *Server) Open(t testing.TB) *store.S3 {
	t.Helper()
	st, err := store.OpenS3(context.Background(), s.Config())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Start starts the server (again) and waits until it listens. The first
// start gives versitygw port 0, so that it binds a port of its own and no
// other process can take the port between a choice and the bind; the port
// is read from the process's listening sockets. A restart asks for the
// same port again, for clients that hold the address.
func (s *Server) Start() {
	s.t.Helper()
	addr := s.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s.cmd = exec.Command(s.bin, "--port", addr, "posix", s.Dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.Access, "ROOT_SECRET_KEY="+s.secret, "VGW_REGION=us-east-1")
	var out strings.Builder
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("versitygw: %v", err)
	}
	s.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(s.cmd, s.done)
	deadline := time.Now().Add(30 * time.Second)
	for !s.listening() {
		select {
		case err := <-s.done:
			s.t.Fatalf("versitygw exited before it listened: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond): // polling for the port to open
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw did not listen on %s within 30 s\n%s", addr, out.String())
		}
	}
}

// listening reports whether the server listens, and on its first start
// sets Addr to the port it bound.
func (s *Server) listening() bool {
	ports, err := testenv.ListenPorts(s.cmd.Process.Pid)
	if err != nil || len(ports) == 0 {
		return false
	}
	if s.Addr == "" {
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	}
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Kill stops the server with SIGKILL and waits for it to exit; a stopped
// server is left alone.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

func (s *Server) client() *minio.Client {
	c, err := minio.New(s.Addr, &minio.Options{Creds: credentials.NewStaticV4(s.Access, s.secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}

// Backend gives each behaviour of the conformance suite its own prefix in
// the server's bucket.
func (s *Server) Backend(t *testing.T) Opener {
	cfg := s.Config()
	cfg.Prefix = "t" + random(6) + "/"
	return func() store.Store {
		st, err := store.OpenS3(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}
