package web_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// boxHash is the password's hash at the box's own cost (19 MiB, two
// passes), which the tests otherwise lower: checking a password against it
// takes that memory.
func boxHash(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	const memory, passes = 19 * 1024, 2
	sum := argon2.IDKey([]byte(pw), salt, passes, memory, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=1$%s$%s\n", argon2.Version, memory, passes, b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// heapPeak samples the heap's size until stop is called, which returns
// the largest size seen.
func heapPeak() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done, out := make(chan struct{}), make(chan uint64)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-out }
}

// TestParallelWrongPasswords: 40 wrong passwords at once, from one
// address or from forty, are not all hashed at once: the box's heap stays
// small, the excess is told to come back later, and the right password
// works again afterwards.
func TestParallelWrongPasswords(t *testing.T) {
	tests := []struct {
		name  string
		addrs int
	}{
		{"one address", 1},
		{"forty addresses", 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.staff()
			if err := os.WriteFile(filepath.Join(e.state, "web-password"), []byte(boxHash("correct horse battery")), 0o600); err != nil {
				t.Fatal(err)
			}
			clients := make([]*client, 40)
			for i := range clients {
				clients[i] = e.client(e.lan.URL, fmt.Sprintf("127.0.1.%d", 1+i%tt.addrs))
			}
			runtime.GC()
			before := heapPeak()()
			stop := heapPeak()
			codes := make([]response, len(clients))
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Go(func() { codes[i] = c.post("/login", url.Values{"password": {fmt.Sprint("guess number ", i)}}, nil) })
			}
			wg.Wait()
			peak := stop()
			count := map[int]int{}
			for _, res := range codes {
				count[res.code]++
				if res.code == http.StatusTooManyRequests && res.header.Get("Retry-After") == "" {
					t.Errorf("got 429 without Retry-After; want one")
				}
			}
			if count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != len(clients) {
				t.Errorf("got %v; want only 401 and 429", count)
			}
			if grew := int64(peak) - int64(before); grew > 64<<20 {
				t.Errorf("got the heap grown by %d MiB under 40 parallel wrong passwords; want at most 64 MiB", grew>>20)
			}
			t.Logf("heap grew by %d MiB; answers %v", (int64(peak)-int64(before))>>20, count)
			e.clock.Advance(2 * time.Minute)
			if res := e.client(e.lan.URL, "127.0.2.1").post("/login", url.Values{"password": {"correct horse battery"}}, nil); res.code != http.StatusSeeOther {
				t.Errorf("the right password afterwards: got %d; want 303", res.code)
			}
		})
	}
}

// TestWrongPasswordsFromManyAddresses: one address after another, the box
// checks at most 30 wrong passwords a minute in all.
func TestWrongPasswordsFromManyAddresses(t *testing.T) {
	e := newEnv(t)
	e.staff() // setting the password was the minute's first try
	for i := range 29 {
		if res := e.client(e.lan.URL, fmt.Sprintf("127.0.4.%d", i+1)).post("/login", url.Values{"password": {"a guess"}}, nil); res.code != http.StatusUnauthorized {
			t.Fatalf("guess %d: got %d; want 401", i+1, res.code)
		}
	}
	c := e.client(e.lan.URL, "127.0.4.200")
	res := c.post("/login", url.Values{"password": {"correct horse battery"}}, nil)
	if res.code != http.StatusTooManyRequests || !strings.Contains(res.body, "tried on this box") || res.header.Get("Retry-After") != "60" {
		t.Errorf("the 31st try in a minute: got %d, Retry-After %q, %q; want 429, 60, saying too many were tried on this box", res.code, res.header.Get("Retry-After"), res.body)
	}
	e.clock.Advance(time.Minute)
	if res := c.post("/login", url.Values{"password": {"correct horse battery"}}, nil); res.code != http.StatusSeeOther {
		t.Errorf("a minute later: got %d; want 303", res.code)
	}
}
