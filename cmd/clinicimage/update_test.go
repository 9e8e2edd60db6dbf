package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeUpdater answers gokrazy's update requests as its update.go does:
// basic auth, PUT /update/{root,boot} answered with the SHA-256 of what was
// written, POST /update/switch and /reboot. corrupt flips a byte of what
// it writes, as a failing SD card would.
type fakeUpdater struct {
	password string
	corrupt  bool

	mu      sync.Mutex
	written map[string][]byte
	calls   []string
}

func (g *fakeUpdater) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if user, pw, ok := r.BasicAuth(); !ok || user != "gokrazy" || pw != g.password {
		http.Error(w, "authorization required", http.StatusUnauthorized)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, r.Method+" "+r.URL.Path)
	switch r.Method + " " + r.URL.Path {
	case "GET /update/features":
		io.WriteString(w, "partuuid,updatehash,gpt,")
	case "PUT /update/root", "PUT /update/boot":
		if r.Header.Get("X-Gokrazy-Update-Hash") != "sha256" {
			http.Error(w, "want sha256", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		if g.corrupt && len(b) > 0 {
			b[len(b)/2] ^= 1
		}
		g.written[r.URL.Path] = b
		fmt.Fprintf(w, "%x", sha256.Sum256(b))
	case "POST /update/switch", "POST /reboot":
	default:
		http.NotFound(w, r)
	}
}

func writeGaf(t *testing.T, parts map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "box.gaf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range parts {
		w, _ := zw.Create(name)
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestPushUpdate(t *testing.T) {
	root, boot := strings.Repeat("squashfs ", 100000), strings.Repeat("fat ", 1000)
	gaf := writeGaf(t, map[string]string{"root.img": root, "boot.img": boot, "mbr.img": "mbr"})
	ctx := context.Background()

	g := &fakeUpdater{password: "pw", written: map[string][]byte{}}
	srv := httptest.NewServer(g)
	defer srv.Close()
	if err := pushUpdate(ctx, srv.Client(), srv.URL, "pw", gaf, io.Discard); err != nil {
		t.Fatal(err)
	}
	if string(g.written["/update/root"]) != root || string(g.written["/update/boot"]) != boot {
		t.Errorf("the box got root %d bytes, boot %d; want %d and %d", len(g.written["/update/root"]), len(g.written["/update/boot"]), len(root), len(boot))
	}
	want := "GET /update/features,PUT /update/root,PUT /update/boot,POST /update/switch,POST /reboot"
	if got := strings.Join(g.calls, ","); got != want {
		t.Errorf("requests %s; want %s", got, want)
	}

	t.Run("a write that does not match is not switched to", func(t *testing.T) {
		g := &fakeUpdater{password: "pw", corrupt: true, written: map[string][]byte{}}
		srv := httptest.NewServer(g)
		defer srv.Close()
		err := pushUpdate(ctx, srv.Client(), srv.URL, "pw", gaf, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not switching") {
			t.Errorf("err = %v; want one saying it does not switch", err)
		}
		for _, c := range g.calls {
			if c == "POST /update/switch" || c == "POST /reboot" {
				t.Errorf("requests %q after a bad write", g.calls)
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		err := pushUpdate(ctx, srv.Client(), srv.URL, "not it", gaf, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "update password") {
			t.Errorf("err = %v; want one about the update password", err)
		}
	})
}
