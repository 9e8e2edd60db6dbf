package archive

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// A backup file's writeback is started every writebackEvery bytes while it
// is written, over ranges that follow each other from its start, and the
// file reads back whole.
func TestBackupWritebackStartedWhileWriting(t *testing.T) {
	type call struct{ off, n int64 }
	var calls []call
	var written []int64 // bytes in the file when each call came
	writebackStart = func(f *os.File, off, n int64) {
		st, err := f.Stat()
		if err != nil {
			t.Error(err)
		}
		calls, written = append(calls, call{off, n}), append(written, st.Size())
		startWriteback(f, off, n)
	}
	defer func() { writebackStart = startWriteback }()
	r, ids := testRepo(t)
	content := walBytes(2*writebackEvery+3*contentChunk, 7)
	w, err := r.NewBackup(NewID(r.Info.Created), NoCompress)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := w.Archive("base.tar", "")
	if err != nil {
		t.Fatal(err)
	}
	for p := content; len(p) > 0; p = p[min(len(p), 100_000):] {
		if _, err := fw.Write(p[:min(len(p), 100_000)]); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("writeback started %d times while %d bytes were written; want twice", len(calls), len(content))
	}
	next := int64(0)
	for i, c := range calls {
		if c.off != next || c.n < writebackEvery || written[i] != c.off+c.n {
			t.Errorf("writeback %d: bytes %d+%d with %d in the file; want %d+%d or more, all in the file", i, c.off, c.n, written[i], next, writebackEvery)
		}
		next = c.off + c.n
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := w.Manifest()
	m.Write([]byte("{}"))
	m.Close()
	b, err := w.Commit(Backup{Timeline: 1, StartLSN: 0x3000028, EndLSN: 0x3000100, EndTimeline: 1, Compression: NoCompress})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.OpenFile(b, b.Files[0], ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, content) {
		t.Errorf("read back %d bytes, %v; want the %d written", len(got), err, len(content))
	}
}
