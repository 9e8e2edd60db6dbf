package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// Opener opens the store under test; called again, it opens the same
// objects anew (as a vault restarted would).
type Opener func() store.Store

// Backend makes a new, empty store for one behaviour and returns how to
// open it.
type Backend func(t *testing.T) Opener

// behaviours are what every store must do, checked one by one.
var behaviours = []struct {
	name string
	test func(t *testing.T, ctx context.Context, s store.Store, open Opener)
}{
	{"PutGetRoundTrip", putGet},
	{"PutIfAbsentRefusesExisting", putIfAbsentExisting},
	{"ShortBodyStoresNothing", shortBody},
	{"RangeReads", rangeReads},
	{"MissingIsNotFound", missing},
	{"PutIfMatch", putIfMatch},
	{"OneWinnerAmongRacingCreates", racingCreates},
	{"OneWinnerAmongRacingReplaces", racingReplaces},
	{"ListByPrefixInKeyOrder", listPrefix},
	{"Delete", deleteObject},
	{"BadKeysRefused", badKeys},
	{"ReadAllBounded", readAllBounded},
	{"MultipartInvisibleUntilComplete", multipartComplete},
	{"MultipartResumesAfterReopen", multipartResume},
	{"MultipartSmallPartRefused", multipartSmallPart},
	{"MultipartAbort", multipartAbort},
}

// Run checks every behaviour, each on a new store of the backend.
func Run(t *testing.T, backend Backend) {
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			open := backend(t)
			b.test(t, context.Background(), open(), open)
		})
	}
}

func put(t *testing.T, ctx context.Context, s store.Store, key, body string) store.Info {
	t.Helper()
	fi, err := s.PutIfAbsent(ctx, key, strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return fi
}

func read(t *testing.T, ctx context.Context, s store.Store, key string, off, n int64) string {
	t.Helper()
	rc, err := s.Get(ctx, key, off, n)
	if err != nil {
		t.Fatalf("get %s [%d,+%d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(b)
}

func putGet(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	fi := put(t, ctx, s, "ns/wal/0001", "sealed bytes")
	if fi.Size != 12 || fi.ETag == "" {
		t.Errorf("put returned size %d etag %q; want 12 and an ETag", fi.Size, fi.ETag)
	}
	if got := read(t, ctx, s, "ns/wal/0001", 0, -1); got != "sealed bytes" {
		t.Errorf("got %q; want %q", got, "sealed bytes")
	}
	st, err := s.Stat(ctx, "ns/wal/0001")
	if err != nil || st.Size != 12 || st.ETag != fi.ETag {
		t.Errorf("stat: %+v, %v; want size 12 and ETag %q", st, err, fi.ETag)
	}
	put(t, ctx, s, "empty", "")
	if got := read(t, ctx, s, "empty", 0, -1); got != "" {
		t.Errorf("empty object read %q", got)
	}
}

func putIfAbsentExisting(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	put(t, ctx, s, "meta.json", "first")
	_, err := s.PutIfAbsent(ctx, "meta.json", strings.NewReader("second"), 6)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second put: %v; want ErrExists", err)
	}
	if got := read(t, ctx, s, "meta.json", 0, -1); got != "first" {
		t.Errorf("after refused put: %q; want %q", got, "first")
	}
}

func shortBody(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	_, err := s.PutIfAbsent(ctx, "short", strings.NewReader("abc"), 10)
	if err == nil {
		t.Fatal("put of 3 bytes claimed as 10 succeeded")
	}
	if _, err := s.Stat(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat after short put: %v; want ErrNotFound", err)
	}
}

func rangeReads(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	put(t, ctx, s, "r", "0123456789")
	for _, c := range []struct {
		off, n int64
		want   string
	}{{0, -1, "0123456789"}, {3, 4, "3456"}, {7, -1, "789"}, {9, 1, "9"}, {5, 0, ""}, {0, 10, "0123456789"}} {
		if got := read(t, ctx, s, "r", c.off, c.n); got != c.want {
			t.Errorf("[%d,+%d): got %q; want %q", c.off, c.n, got, c.want)
		}
	}
}

func missing(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat: %v; want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "nope", 0, -1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get: %v; want ErrNotFound", err)
	}
	if _, err := s.PutIfMatch(ctx, "nope", strings.NewReader("x"), 1, "abc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("put if match: %v; want ErrNotFound", err)
	}
}

func putIfMatch(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	v1 := put(t, ctx, s, "lease", "node-a")
	v2, err := s.PutIfMatch(ctx, "lease", strings.NewReader("node-b"), 6, v1.ETag)
	if err != nil {
		t.Fatalf("replace with current ETag: %v", err)
	}
	if v2.ETag == v1.ETag {
		t.Errorf("ETag %q did not change with the content", v2.ETag)
	}
	_, err = s.PutIfMatch(ctx, "lease", strings.NewReader("node-c"), 6, v1.ETag)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replace with stale ETag: %v; want ErrConflict", err)
	}
	if got := read(t, ctx, s, "lease", 0, -1); got != "node-b" {
		t.Errorf("got %q; want node-b", got)
	}
}

// race runs n goroutines of f and returns how many succeeded; every other
// one must fail with want.
func race(t *testing.T, n int, want error, f func(i int) error) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, want):
			t.Errorf("a loser failed with %v; want %v", err, want)
		}
	}
	return won
}

func racingCreates(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	won := race(t, 8, store.ErrExists, func(i int) error {
		_, err := s.PutIfAbsent(ctx, "once", strings.NewReader(string(rune('a'+i))), 1)
		return err
	})
	if won != 1 {
		t.Errorf("%d of 8 racing creates won; want exactly 1", won)
	}
}

func racingReplaces(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	v := put(t, ctx, s, "lease", "0")
	won := race(t, 8, store.ErrConflict, func(i int) error {
		_, err := s.PutIfMatch(ctx, "lease", strings.NewReader(string(rune('a'+i))), 1, v.ETag)
		return err
	})
	if won != 1 {
		t.Errorf("%d of 8 racing replaces won; want exactly 1", won)
	}
}

func listPrefix(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	for _, k := range []string{"a/b", "a-c", "a/d/e", "b/x", "a/c"} {
		put(t, ctx, s, k, k)
	}
	for _, c := range []struct{ prefix, want string }{
		{"a/", "a/b a/c a/d/e"},
		{"a", "a-c a/b a/c a/d/e"},
		{"a/d", "a/d/e"},
		{"", "a-c a/b a/c a/d/e b/x"},
		{"c/", ""},
	} {
		var got []string
		err := s.List(ctx, c.prefix, func(fi store.Info) error {
			if fi.Size != int64(len(fi.Key)) {
				t.Errorf("%s: size %d; want %d", fi.Key, fi.Size, len(fi.Key))
			}
			got = append(got, fi.Key)
			return nil
		})
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("list %q: %q, %v; want %q", c.prefix, strings.Join(got, " "), err, c.want)
		}
	}
}

func deleteObject(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	put(t, ctx, s, "d/x", "x")
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "d/x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat after delete: %v; want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Errorf("deleting a missing key: %v; want nil", err)
	}
	put(t, ctx, s, "d/x", "again") // a deleted key can be created again
}

func badKeys(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	for _, k := range []string{"", "../x", "/x", "a//b", ".tmp/x", "a/../b", "a b", "a/", strings.Repeat("k", 600)} {
		if _, err := s.PutIfAbsent(ctx, k, strings.NewReader("x"), 1); err == nil {
			t.Errorf("put %q succeeded; want refused", k)
		}
		if _, err := s.Stat(ctx, k); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("stat %q: %v; want refused as a bad key", k, err)
		}
	}
}

func readAllBounded(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	put(t, ctx, s, "big", strings.Repeat("x", 100))
	if _, err := store.ReadAll(ctx, s, "big", 99); err == nil {
		t.Error("ReadAll of 100 bytes with a bound of 99 succeeded")
	}
	if b, err := store.ReadAll(ctx, s, "big", 100); err != nil || len(b) != 100 {
		t.Errorf("ReadAll at its bound: %d bytes, %v", len(b), err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// upload stores part num of an upload.
func upload(t *testing.T, ctx context.Context, s store.Store, key, id string, num int, data []byte) store.Part {
	t.Helper()
	p, err := s.UploadPart(ctx, key, id, num, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("upload part %d: %v", num, err)
	}
	return p
}

func multipartComplete(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	one, two := randomBytes(store.MinPartSize), randomBytes(1000)
	id, err := s.CreateMultipart(ctx, "b/base.tar.age")
	if err != nil {
		t.Fatal(err)
	}
	p1 := upload(t, ctx, s, "b/base.tar.age", id, 1, one)
	p2 := upload(t, ctx, s, "b/base.tar.age", id, 2, two)
	if _, err := s.Stat(ctx, "b/base.tar.age"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat before completion: %v; want ErrNotFound", err)
	}
	s.List(ctx, "b/", func(fi store.Info) error {
		t.Errorf("listed %s before completion", fi.Key)
		return nil
	})
	fi, err := s.CompleteMultipart(ctx, "b/base.tar.age", id, []store.Part{p1, p2})
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size != int64(len(one)+len(two)) {
		t.Errorf("size %d; want %d", fi.Size, len(one)+len(two))
	}
	if got := read(t, ctx, s, "b/base.tar.age", 0, -1); got != string(one)+string(two) {
		t.Error("the completed object is not its parts joined")
	}
	if ups, err := s.ListUploads(ctx, "b/"); err != nil || len(ups) != 0 {
		t.Errorf("uploads after completion: %v, %v; want none", ups, err)
	}
}

func multipartResume(t *testing.T, ctx context.Context, s store.Store, open Opener) {
	key := "ns/backups/7/base.tar.age"
	id, err := s.CreateMultipart(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	one := randomBytes(store.MinPartSize)
	upload(t, ctx, s, key, id, 1, one)
	s = open() // the vault restarted: it knows nothing but the store
	ups, err := s.ListUploads(ctx, "ns/")
	if err != nil || len(ups) != 1 || ups[0].Key != key || ups[0].ID != id {
		t.Fatalf("uploads after reopening: %+v, %v; want %s %s", ups, err, key, id)
	}
	parts, err := s.ListParts(ctx, key, id)
	if err != nil || len(parts) != 1 || parts[0].Number != 1 || parts[0].Size != int64(len(one)) {
		t.Fatalf("parts after reopening: %+v, %v; want part 1 of %d bytes", parts, err, len(one))
	}
	two := []byte("the rest")
	parts = append(parts, upload(t, ctx, s, key, id, 2, two))
	if _, err := s.CompleteMultipart(ctx, key, id, parts); err != nil {
		t.Fatal(err)
	}
	if got := read(t, ctx, s, key, int64(len(one)), -1); got != "the rest" {
		t.Errorf("tail %q; want %q", got, "the rest")
	}
}

func multipartSmallPart(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	id, err := s.CreateMultipart(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	p1 := upload(t, ctx, s, "small", id, 1, []byte("tiny"))
	p2 := upload(t, ctx, s, "small", id, 2, []byte("tail"))
	if _, err := s.CompleteMultipart(ctx, "small", id, []store.Part{p1, p2}); err == nil {
		t.Error("completing with a first part of 4 bytes succeeded; want refused (5 MiB minimum)")
	}
	if _, err := s.Stat(ctx, "small"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat after refused completion: %v; want ErrNotFound", err)
	}
}

func multipartAbort(t *testing.T, ctx context.Context, s store.Store, _ Opener) {
	id, err := s.CreateMultipart(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	upload(t, ctx, s, "gone", id, 1, []byte("x"))
	if err := s.AbortMultipart(ctx, "gone", id); err != nil {
		t.Fatal(err)
	}
	if ups, err := s.ListUploads(ctx, ""); err != nil || len(ups) != 0 {
		t.Errorf("uploads after abort: %v, %v; want none", ups, err)
	}
	if _, err := s.ListParts(ctx, "gone", id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("parts of an aborted upload: %v; want ErrNotFound", err)
	}
}
