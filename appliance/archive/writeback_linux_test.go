package archive

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// cachedPages says how many of the file's pages are in the page cache
// (mincore over a mapping of it; mapping a file reads none of it).
func cachedPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	// x/sys/unix has no mincore wrapper.
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// needPageCache skips t where dir's file system keeps files in memory
// (tmpfs), whose pages cannot leave the cache.
func needPageCache(t *testing.T, dir string) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		testenv.Skip(t, "a file system with a page cache: "+dir+" is on tmpfs")
	}
}

// A file committed into the repository (every complete WAL segment is one)
// leaves the page cache once it is on the drive.
func TestCommittedFileLeavesThePageCache(t *testing.T) {
	r, _ := testRepo(t)
	needPageCache(t, r.Dir)
	path := filepath.Join(r.Dir, "dropped")
	if err := writeFileAtomic(path, walBytes(4<<20, 3)); err != nil {
		t.Fatal(err)
	}
	if n := cachedPages(t, path); n != 0 {
		t.Errorf("%d pages of a committed 4 MB file are still in the page cache; want none", n)
	}
}

// A backup file holds at most two writeback ranges of the page cache while
// it is written, whatever its size, and none once it is closed.
func TestBackupFileHoldsTwoRangesOfThePageCache(t *testing.T) {
	r, _ := testRepo(t)
	needPageCache(t, r.Dir)
	w, err := r.NewBackup(NewID(r.Info.Created), NoCompress)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := w.Archive("base.tar", "")
	if err != nil {
		t.Fatal(err)
	}
	fw := wc.(*fileWriter)
	content := walBytes(6*writebackEvery, 9)
	page := os.Getpagesize()
	limit := (2*writebackEvery + segWriteBuf + contentChunk) / page
	most := 0
	for p := content; len(p) > 0; p = p[min(len(p), 1<<20):] {
		if _, err := fw.Write(p[:min(len(p), 1<<20)]); err != nil {
			t.Fatal(err)
		}
		most = max(most, cachedPages(t, fw.f.Name()))
	}
	if most > limit {
		t.Errorf("writing a %d MB backup file kept up to %d pages of it in the page cache; want at most %d (two writeback ranges and the buffers)", len(content)>>20, most, limit)
	}
	name := fw.f.Name()
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if n := cachedPages(t, name); n != 0 {
		t.Errorf("%d pages of a closed backup file are still in the page cache; want none", n)
	}
}
