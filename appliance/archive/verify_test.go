package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file build small repositories by hand (64 KiB
// segments, a backup of two small files) and check what verify, the WAL
// check, the catalog and pruning say about them, without PostgreSQL.

// walPageSize is the WAL page size of the hand-built segments.
const walPageSize = 8192

// walSegment is a segment whose page headers are as PostgreSQL 15 writes
// them: the long header on the first page, then one header per page with
// the timeline and the page's own address.
func walSegment(r *Repo, tli uint32, segNo uint64) []byte {
	size := int(r.Info.SegmentSize)
	d := walBytes(size, segNo)
	sys, _ := strconv.ParseUint(r.Info.SystemID, 10, 64)
	for off := 0; off < size; off += walPageSize {
		p := d[off:]
		binary.LittleEndian.PutUint16(p, 0xD110)
		binary.LittleEndian.PutUint16(p[2:], 0)
		binary.LittleEndian.PutUint32(p[4:], tli)
		binary.LittleEndian.PutUint64(p[8:], segNo*r.Info.SegmentSize+uint64(off))
		binary.LittleEndian.PutUint32(p[16:], 0)
	}
	binary.LittleEndian.PutUint16(d[2:], xlpLongHeader)
	binary.LittleEndian.PutUint64(d[24:], sys)
	binary.LittleEndian.PutUint32(d[32:], uint32(size))
	binary.LittleEndian.PutUint32(d[36:], walPageSize)
	return d
}

// streamWAL stores segments from through to (to may end partial, holding
// partialBytes bytes, when partialBytes > 0) in one streaming session.
func streamWAL(t *testing.T, r *Repo, tli uint32, from, to uint64, partialBytes int) {
	t.Helper()
	var segs [][]byte
	for seg := from; seg <= to; seg++ {
		segs = append(segs, walSegment(r, tli, seg))
	}
	if partialBytes > 0 {
		segs[len(segs)-1] = segs[len(segs)-1][:partialBytes]
	}
	storeWAL(t, r, tli, from, segs, true)
}

// storeWAL writes segs from segment from on, signed by the box as if
// PostgreSQL had sent them; fresh keeps the mark of a new streaming
// session at from, so that a gap before it is no gap.
func storeWAL(t *testing.T, r *Repo, tli uint32, from uint64, segs [][]byte, fresh bool) {
	t.Helper()
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	size := r.Info.SegmentSize
	if err := w.Begin(tli, LSN(from*size)); err != nil {
		t.Fatal(err)
	}
	if !fresh {
		os.Remove(r.segPath(tli, from, startSuffix))
	}
	for i, data := range segs {
		if err := w.Write(LSN((from+uint64(i))*size), data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// goodBackup stores a signed backup of two small files that needs the WAL
// of segments 3 and 4 on timeline 1.
func goodBackup(t *testing.T, r *Repo) *Backup {
	t.Helper()
	files := map[string][]byte{"PG_VERSION": []byte("15\n"), "base/1/1259": walBytes(3000, 1)}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	var entries []string
	for _, name := range []string{"PG_VERSION", "base/1/1259"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write(files[name])
		sum := sha256.Sum256(files[name])
		entries = append(entries, fmt.Sprintf(`{ "Path": %q, "Size": %d, "Last-Modified": "2026-03-01 02:00:00 GMT", "Checksum-Algorithm": "SHA256", "Checksum": %q }`,
			name, len(files[name]), hex.EncodeToString(sum[:])))
	}
	tw.Close()
	size := r.Info.SegmentSize
	start, end := LSN(3*size+0x28), LSN(4*size+0x100)
	manifest := "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n" + strings.Join(entries, ",\n") + " ],\n" +
		fmt.Sprintf("\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": %q, \"End-LSN\": %q }\n],\n", start, end)
	sum := sha256.Sum256([]byte(manifest))
	manifest += fmt.Sprintf("\"Manifest-Checksum\": %q}\n", hex.EncodeToString(sum[:]))

	return storeBackup(t, r, tarBuf.Bytes(), []byte(manifest), Backup{Timeline: 1, StartLSN: start, EndLSN: end, EndTimeline: 1, Compression: ClientZstd})
}

// flipByte changes one byte in the middle of a file.
func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, filePerm); err != nil {
		t.Fatal(err)
	}
}

// cutFile keeps the first half of a file, as a copy that stopped midway.
func cutFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// problemsOf lists a report's problems as "object: what" lines.
func problemsOf(rep *Report) string {
	var s []string
	for _, p := range rep.Problems {
		s = append(s, p.String())
	}
	return strings.Join(s, "\n")
}

// baseArchiveUnreadable are the problems of a backup whose only archive
// cannot be read: the archive, and every file the manifest lists.
var baseArchiveUnreadable = []string{"ID/base.tar.zst.age: damaged: ", "ID: file PG_VERSION from the manifest is in no archive",
	"ID: file base/1/1259 from the manifest is in no archive"}

func TestVerifyHandBuiltRepositories(t *testing.T) {
	segFile := func(r *Repo, tli uint32, segNo uint64) string { return r.segPath(tli, segNo, segSuffix) }
	archiveOf := func(r *Repo, b *Backup) string {
		for _, f := range b.Files {
			if f.Archive == "base.tar" {
				return r.backupPath(b, f)
			}
		}
		t.Fatal("the backup has no base.tar")
		return ""
	}
	tests := []struct {
		name string
		// build adds to a repository holding a good backup and the WAL of
		// segments 2 to 6 on timeline 1 (6 partial, half full).
		build func(t *testing.T, r *Repo, b *Backup)
		// problems are substrings that must each be in a problem of
		// their own; none means the repository verifies.
		problems []string
		note     string // a substring one note must hold
		backup   string // the backup's own result: ok, failed, or none when it is not listed
	}{
		{name: "good", build: func(*testing.T, *Repo, *Backup) {}, backup: "ok"},
		{name: "corrupt segment the backup needs", build: func(t *testing.T, r *Repo, b *Backup) { flipByte(t, segFile(r, 1, 4)) },
			problems: []string{"000000010000000000000004: "}, backup: "failed"},
		{name: "truncated segment after the backup", build: func(t *testing.T, r *Repo, b *Backup) { cutFile(t, segFile(r, 1, 5)) },
			problems: []string{"000000010000000000000005: "}, backup: "ok"},
		{name: "truncated partial segment", build: func(t *testing.T, r *Repo, b *Backup) {
			cutFile(t, r.segPath(1, 6, partialSuffix))
		}, problems: []string{"000000010000000000000006: partial segment holds"}, backup: "ok"},
		{name: "gap in the WAL", build: func(t *testing.T, r *Repo, b *Backup) { os.Remove(segFile(r, 1, 5)) },
			problems: []string{"000000010000000000000005: WAL segment is missing (the WAL before and after it is present)"}, backup: "ok"},
		{name: "gap where streaming started afresh", build: func(t *testing.T, r *Repo, b *Backup) { streamWAL(t, r, 1, 9, 10, 0) },
			note: "no WAL from 000000010000000000000007 to 000000010000000000000008 (streaming started afresh at 000000010000000000000009)", backup: "ok"},
		{name: "partial segment with more WAL after it", build: func(t *testing.T, r *Repo, b *Backup) { storeWAL(t, r, 1, 7, [][]byte{walSegment(r, 1, 7)}, false) },
			problems: []string{"000000010000000000000006: WAL segment is stored only partially (32768 bytes), yet the WAL goes on at 000000010000000000000007"}, backup: "ok"},
		{name: "partial segment, then streaming started afresh", build: func(t *testing.T, r *Repo, b *Backup) { streamWAL(t, r, 1, 7, 8, 0) },
			note: "no WAL from 000000010000000000000006 past the 32768 bytes its partial file holds (streaming started afresh at 000000010000000000000007)", backup: "ok"},
		{name: "whole segment stored as records, as a vault stores it", build: func(t *testing.T, r *Repo, b *Backup) {
			os.Remove(segFile(r, 1, 5))
			rec, err := sealRecord(walSegment(r, 1, 5), 1, 5, 0, r)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(r.segPath(1, 5, partialSuffix), rec, filePerm); err != nil {
				t.Fatal(err)
			}
		}, backup: "ok"},
		{name: "WAL the backup needs is gone", build: func(t *testing.T, r *Repo, b *Backup) { os.Remove(segFile(r, 1, 3)) },
			problems: []string{"000000010000000000000003: WAL segment is missing; backup ID needs it",
				"000000010000000000000003: WAL segment is missing (the WAL before and after it is present)"}, backup: "failed"},
		{name: "segment of another database system", build: func(t *testing.T, r *Repo, b *Backup) {
			os.Remove(segFile(r, 1, 5))
			writeSegmentAs(t, r, 1, 5, func(d []byte) { binary.LittleEndian.PutUint64(d[24:], 7000000000000000999) })
		}, problems: []string{"000000010000000000000005: segment belongs to database system 7000000000000000999"}, backup: "ok"},
		{name: "forked timeline without its history", build: func(t *testing.T, r *Repo, b *Backup) { streamWAL(t, r, 2, 6, 7, 0) },
			problems: []string{"00000002.history: timeline history file is missing"}, backup: "ok"},
		{name: "forked timeline with its history", build: func(t *testing.T, r *Repo, b *Backup) {
			streamWAL(t, r, 2, 6, 7, 0)
			w, err := r.WAL()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.History(2, []byte(fmt.Sprintf("1\t0/%X\tno recovery target specified\n", 6*r.Info.SegmentSize+0x100))); err != nil {
				t.Fatal(err)
			}
		}, backup: "ok"},
		{name: "page of the wrong timeline in a segment", build: func(t *testing.T, r *Repo, b *Backup) {
			os.Remove(segFile(r, 1, 5))
			writeSegmentAs(t, r, 1, 5, func(d []byte) { binary.LittleEndian.PutUint32(d[2*walPageSize+4:], 3) })
		}, problems: []string{"000000010000000000000005: page at offset 16384: timeline 3 out of order"}, backup: "ok"},
		{name: "corrupt base archive", build: func(t *testing.T, r *Repo, b *Backup) { flipByte(t, archiveOf(r, b)) },
			problems: baseArchiveUnreadable, backup: "failed"},
		{name: "truncated base archive", build: func(t *testing.T, r *Repo, b *Backup) { cutFile(t, archiveOf(r, b)) },
			problems: baseArchiveUnreadable, backup: "failed"},
		{name: "forged signature", build: func(t *testing.T, r *Repo, b *Backup) {
			forged := &Repo{Dir: r.Dir, Info: r.Info, recips: r.recips, sign: forger}
			os.RemoveAll(filepath.Join(r.Dir, "backups", b.ID))
			goodBackup(t, forged)
		}, problems: []string{"/backup.json: "}, backup: "failed"},
		{name: "damaged backup.json", build: func(t *testing.T, r *Repo, b *Backup) {
			os.WriteFile(filepath.Join(r.Dir, "backups", b.ID, backupFile), []byte(`{"id": "`), filePerm)
		}, problems: []string{"backup.json is damaged"}, backup: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, ids := testRepo(t)
			b := goodBackup(t, r)
			streamWAL(t, r, 1, 2, 6, int(r.Info.SegmentSize)/2)
			tt.build(t, r, b)
			rep, err := r.Verify(context.Background(), VerifyOptions{Identities: ids, Parallel: 2})
			if err != nil {
				t.Fatal(err)
			}
			got := problemsOf(rep)
			left := slices.Clone(rep.Problems)
			for _, want := range tt.problems {
				want = strings.ReplaceAll(want, "ID", b.ID)
				i := slices.IndexFunc(left, func(p Problem) bool { return strings.Contains(p.String(), want) })
				if i < 0 {
					t.Errorf("problems:\n%s\nwant one holding %q", got, want)
					continue
				}
				left = slices.Delete(left, i, i+1)
			}
			if len(left) > 0 {
				t.Errorf("problems:\n%s\nwant only %q", got, tt.problems)
			}
			if tt.note != "" && !strings.Contains(strings.Join(rep.Notes, "\n"), tt.note) {
				t.Errorf("notes %q; want one holding %q", rep.Notes, tt.note)
			}
			result := "none"
			if len(rep.Backups) == 1 && rep.Backups[0].OK {
				result = "ok"
			} else if len(rep.Backups) == 1 {
				result = "failed"
			}
			if result != tt.backup || len(rep.Backups) > 1 {
				t.Errorf("backup reports %+v; want the backup %s", rep.Backups, tt.backup)
			}
		})
	}
}

// writeSegmentAs stores segment segNo of timeline tli after change has
// edited its bytes, within the session already there.
func writeSegmentAs(t *testing.T, r *Repo, tli uint32, segNo uint64, change func([]byte)) {
	t.Helper()
	d := walSegment(r, tli, segNo)
	change(d)
	storeWAL(t, r, tli, segNo, [][]byte{d}, false)
}

// A format 1 repository (no signatures) still verifies, with a note that
// nothing proves who wrote it.
func TestVerifyFormat1(t *testing.T) {
	r, ids := testRepo(t)
	r.Info.Format, r.Info.Signer, r.sign, r.trust = 1, "", nil, nil
	b, _ := json.Marshal(r.Info)
	if err := os.WriteFile(filepath.Join(r.Dir, infoFile), b, filePerm); err != nil {
		t.Fatal(err)
	}
	for segNo := uint64(2); segNo <= 4; segNo++ {
		writeSegmentV1(t, r, 1, segNo, walSegment(r, 1, segNo))
	}
	r, err := Open(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Verify(context.Background(), VerifyOptions{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Segments != 3 {
		t.Errorf("format 1: %d segments, problems:\n%s\nwant 3 and none", rep.Segments, problemsOf(rep))
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "UNSIGNED") {
		t.Errorf("notes %q; want one saying the WAL is unsigned", rep.Notes)
	}
	// The same repository with a segment edited after the fact: format 1
	// has no signature, but the page check still finds a foreign page.
	writeSegmentV1(t, r, 1, 3, walSegment(r, 2, 3))
	rep, err = r.Verify(context.Background(), VerifyOptions{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].String(), "000000010000000000000003: page at offset 0: timeline 2 out of order") {
		t.Errorf("format 1 with a foreign segment: problems:\n%s\nwant the timeline of page 0", problemsOf(rep))
	}
}

func TestCatalog(t *testing.T) {
	r, _ := testRepo(t)
	streamWAL(t, r, 1, 2, 4, 1000) // 2, 3 complete; 4 partial
	streamWAL(t, r, 1, 4, 5, 0)    // a later session completes 4
	streamWAL(t, r, 2, 5, 5, 500)
	junk := []string{
		filepath.Join(r.Dir, "wal", "00000001", "not-a-segment"),
		filepath.Join(r.Dir, "wal", "00000001", SegmentName(2, 9, r.Info.SegmentSize)+segSuffix), // another timeline's name
		filepath.Join(r.Dir, "wal", "0000000G", SegmentName(1, 7, r.Info.SegmentSize)+segSuffix),
		filepath.Join(r.Dir, "wal", "00000001", SegmentName(1, 8, r.Info.SegmentSize)+".zst"),
	}
	for _, p := range junk {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), filePerm)
	}
	tls, err := r.Timelines()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tl := range tls {
		line := fmt.Sprintf("tl %d history %v starts %v:", tl.TLI, tl.HasHistory, tl.Starts)
		for _, s := range tl.Segments {
			line += fmt.Sprintf(" %d", s.SegNo)
			if s.Partial {
				line += "p"
			}
		}
		got = append(got, line)
	}
	// The later session's complete segment 4 replaced the partial one.
	want := []string{"tl 1 history false starts [2 4]: 2 3 4 5", "tl 2 history false starts [5]: 5p"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timelines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Backups: complete ones oldest first; an interrupted run and an
	// interrupted delete are not backups; a damaged one is reported.
	first := goodBackup(t, r)
	second := *first
	second.ID, second.StartLSN, second.EndLSN = "20260302T020000Z", first.StartLSN+LSN(r.Info.SegmentSize), first.EndLSN+LSN(r.Info.SegmentSize)
	os.MkdirAll(filepath.Join(r.Dir, "backups", second.ID), 0o755)
	writeBackupJSON(t, r, &second)
	for _, d := range []string{incompletePrefix + "20260303T020000Z", ".deleting-20260304T020000Z", "20260305T020000Z"} {
		os.MkdirAll(filepath.Join(r.Dir, "backups", d), 0o755)
	}
	os.WriteFile(filepath.Join(r.Dir, "backups", "20260305T020000Z", backupFile), []byte("{"), filePerm)
	done, incomplete, damaged, err := r.allBackups()
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 2 || done[0].ID != first.ID || done[1].ID != second.ID {
		t.Errorf("backups %v; want %s then %s", idsOf(done), first.ID, second.ID)
	}
	if len(incomplete) != 1 || incomplete[0] != "20260303T020000Z" {
		t.Errorf("incomplete %q; want 20260303T020000Z", incomplete)
	}
	if len(damaged) != 1 || damaged[0].Object != "20260305T020000Z" || !strings.Contains(damaged[0].What, "damaged") {
		t.Errorf("damaged %v; want 20260305T020000Z's backup.json", damaged)
	}
	if _, err := r.Backup("../" + first.ID); err == nil || !strings.Contains(err.Error(), "not a backup ID") {
		t.Errorf("Backup(../ID): %v; want not a backup ID", err)
	}
}

func idsOf(bs []*Backup) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func TestDeleteBackup(t *testing.T) {
	r, ids := testRepo(t)
	b := goodBackup(t, r)
	streamWAL(t, r, 1, 3, 4, 0)
	for _, bad := range []string{"", "../x", b.ID + "/..", "20260301T020000Z"} {
		if err := r.DeleteBackup(bad); err == nil {
			t.Errorf("DeleteBackup(%q) = nil; want an error", bad)
		}
	}
	// An earlier delete that stopped after its rename is finished by
	// nobody but hidden from everyone.
	os.MkdirAll(filepath.Join(r.Dir, "backups", ".deleting-20250101T000000Z"), 0o755)
	if err := r.DeleteBackup(b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "backups", ".deleting-"+b.ID)); !os.IsNotExist(err) {
		t.Errorf("the renamed backup is still there (%v)", err)
	}
	done, incomplete, err := r.Backups()
	if err != nil || len(done) != 0 || len(incomplete) != 0 {
		t.Errorf("after delete: %v %v %v; want no backups", idsOf(done), incomplete, err)
	}
	rep, err := r.Verify(context.Background(), VerifyOptions{Identities: ids})
	if err != nil || !rep.OK() || len(rep.Backups) != 0 {
		t.Errorf("verify after delete: %v, problems:\n%s\nwant a clean repository of WAL alone", err, problemsOf(rep))
	}
}
