package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// sealRecordV1 is a partial-file record as format 1 wrote it: no magic, no
// seal.
func sealRecordV1(t *testing.T, p []byte, offset int, r *Repo) []byte {
	t.Helper()
	enc, _ := zstd.NewWriter(nil)
	var plain []byte
	plain = binary.BigEndian.AppendUint32(plain, uint32(offset))
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(p)))
	plain = enc.EncodeAll(p, plain)
	sealed, err := sealBytes(plain, r.recips, false)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(sealed))), sealed...)
}

// writeSegmentV1 stores a complete segment as format 1 did: age(zstd).
func writeSegmentV1(t *testing.T, r *Repo, tli uint32, segNo uint64, data []byte) {
	t.Helper()
	if err := mkdirAll(r.walDir(tli)); err != nil {
		t.Fatal(err)
	}
	sealed, err := sealBytes(data, r.recips, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.segPath(tli, segNo, segSuffix), sealed, filePerm); err != nil {
		t.Fatal(err)
	}
}

// formatV1Repo is a repository as format 1 left it: a complete segment 2
// and a partial segment 3 of 9000 bytes, unsigned.
func formatV1Repo(t *testing.T) (*Repo, []age.Identity, []byte) {
	r, ids := testRepo(t)
	r.Info.Format, r.Info.Signer, r.sign, r.trust = 1, "", nil, nil
	b, _ := json.Marshal(r.Info)
	if err := os.WriteFile(filepath.Join(r.Dir, infoFile), b, filePerm); err != nil {
		t.Fatal(err)
	}
	data := walBytes(int(r.Info.SegmentSize), 9)
	writeSegmentV1(t, r, 1, 2, data)
	var partial []byte
	for _, cut := range [][2]int{{0, 1000}, {1000, 5000}, {5000, 9000}} {
		partial = append(partial, sealRecordV1(t, data[cut[0]:cut[1]], cut[0], r)...)
	}
	if err := os.WriteFile(r.segPath(1, 3, partialSuffix), partial, filePerm); err != nil {
		t.Fatal(err)
	}
	return r, ids, data
}

// A format 1 repository reads, with a note that nothing proves who wrote
// it; once the box writes to it again it becomes format 2, and only what it
// held before stays acceptable unsigned.
func TestFormat1ReadsAndUpgrades(t *testing.T) {
	r, ids, data := formatV1Repo(t)
	r, err := Open(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(r *Repo, what string) {
		t.Helper()
		for _, tc := range []struct {
			segNo uint64
			valid int
		}{{2, len(data)}, {3, 9000}} {
			sd, err := r.ReadSegment(1, tc.segNo, ids)
			if err != nil {
				t.Fatalf("%s: segment %d: %v", what, tc.segNo, err)
			}
			if sd.Valid != tc.valid || !bytes.Equal(sd.Data[:sd.Valid], data[:tc.valid]) || sd.Unsigned == "" {
				t.Errorf("%s: segment %d: valid %d, note %q; want %d bytes back and a note that it is unsigned", what, tc.segNo, sd.Valid, sd.Unsigned, tc.valid)
			}
		}
	}
	check(r, "format 1")
	up, err := Create(r.Dir, r.Info, boxKey)
	if err != nil {
		t.Fatal(err)
	}
	if up.Info.Format != 2 || up.Info.SignedFrom != LSN(4*r.Info.SegmentSize) {
		t.Fatalf("upgraded: format %d, signed from %s; want 2, from the end of segment 3", up.Info.Format, up.Info.SignedFrom)
	}
	again, _ := Open(r.Dir)
	again.Trust(boxKey.Public())
	check(again, "upgraded")
	// An unsigned segment after the upgrade point is a forgery.
	writeSegmentV1(t, r, 1, 4, data)
	if _, err := again.ReadSegment(1, 4, ids); !errors.Is(err, ErrForged) {
		t.Errorf("unsigned segment after the upgrade: %v; want ErrForged", err)
	}
}

// WAL written by anyone but the trusted box, or moved to another place, is
// refused.
func TestForgedWALRefused(t *testing.T) {
	r, ids := testRepo(t)
	seg := int(r.Info.SegmentSize)
	data := walBytes(seg, 3)
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Begin(1, LSN(2*seg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(LSN(2*seg), data); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(LSN(3*seg), data[:5000]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, segNo := range []uint64{2, 3} {
		if _, err := r.ReadSegment(1, segNo, ids); err != nil {
			t.Fatalf("genuine segment %d: %v", segNo, err)
		}
	}
	forged := &Repo{Dir: r.Dir, Info: r.Info, recips: r.recips, sign: forger}
	tests := []struct {
		name  string
		setup func(t *testing.T)
		segNo uint64
	}{
		{"segment signed by another key", func(t *testing.T) {
			rec, _ := sealRecord(data, 1, 4, 0, forged)
			os.WriteFile(r.segPath(1, 4, partialSuffix), rec, filePerm)
		}, 4},
		{"record appended by another key", func(t *testing.T) {
			rec, _ := sealRecord(data[5000:6000], 1, 3, 5000, forged)
			f, _ := os.OpenFile(r.segPath(1, 3, partialSuffix), os.O_APPEND|os.O_WRONLY, 0)
			f.Write(rec)
			f.Close()
		}, 3},
		{"genuine segment copied to another place", func(t *testing.T) {
			b, _ := os.ReadFile(r.segPath(1, 2, segSuffix))
			os.WriteFile(r.segPath(1, 5, segSuffix), b, filePerm)
		}, 5},
		{"unsigned record", func(t *testing.T) {
			os.WriteFile(r.segPath(1, 6, partialSuffix), sealRecordV1(t, data[:100], 0, r), filePerm)
		}, 6},
		{"unsigned segment", func(t *testing.T) { writeSegmentV1(t, r, 1, 7, data) }, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup(t)
			if _, err := r.ReadSegment(1, tt.segNo, ids); !errors.Is(err, ErrForged) {
				t.Errorf("got %v; want ErrForged", err)
			}
		})
	}
	other, _ := Open(r.Dir)
	if _, err := other.ReadSegment(1, 2, ids); !errors.Is(err, ErrNoTrustAnchor) {
		t.Errorf("read without a trust anchor: %v; want ErrNoTrustAnchor", err)
	}
	other.Trust(forger.Public())
	if _, err := other.ReadSegment(1, 2, ids); !errors.Is(err, ErrForged) {
		t.Errorf("read trusting another key: %v; want ErrForged", err)
	}
}

// A timeline history file is signed too.
func TestHistorySigned(t *testing.T) {
	r, ids := testRepo(t)
	w, _ := r.WAL()
	defer w.Close()
	content := []byte("1\t0/3000000\tno recovery target specified\n")
	if err := w.History(2, content); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadHistory(2, ids); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ReadHistory: %q, %v; want the content back", got, err)
	}
	forged := &Repo{Dir: r.Dir, Info: r.Info, recips: r.recips, sign: forger}
	b, _ := sealHistory([]byte("1\t0/9000000\tforged\n"), 2, forged)
	os.WriteFile(r.historyPath(2), b, filePerm)
	if _, err := r.ReadHistory(2, ids); !errors.Is(err, ErrForged) {
		t.Errorf("forged history: %v; want ErrForged", err)
	}
}

// writeBackup stores a backup of content (as base.tar) through r.
func writeBackup(t *testing.T, r *Repo, content []byte) *Backup {
	t.Helper()
	return storeBackup(t, r, content, []byte("{}"), Backup{Timeline: 1, StartLSN: 0x3000028, EndLSN: 0x3000100, EndTimeline: 1, Compression: NoCompress})
}

// storeBackup stores a backup of base.tar and a manifest through r, with
// b's positions and compression.
func storeBackup(t *testing.T, r *Repo, base, manifest []byte, b Backup) *Backup {
	t.Helper()
	w, err := r.NewBackup(NewID(r.Info.Created), b.Compression)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		open func() (io.WriteCloser, error)
		data []byte
	}{{func() (io.WriteCloser, error) { return w.Archive("base.tar", "") }, base}, {w.Manifest, manifest}} {
		fw, err := f.open()
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(f.data)
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := w.Commit(b)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// readBase reads a backup's base archive through OpenFile.
func readBase(r *Repo, b *Backup, ids []age.Identity) ([]byte, error) {
	rc, err := r.OpenFile(b, b.Files[0], ids)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// reseal replaces a stored file's content and fixes backup.json's record of
// the stored bytes, as someone holding the drive and the public recipients
// could.
func reseal(t *testing.T, r *Repo, b *Backup, content []byte) {
	t.Helper()
	sealed, err := sealBytes(content, r.recips, false)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.backupPath(b, b.Files[0]), sealed, filePerm)
	b.Files[0].Size, b.Files[0].SHA256 = int64(len(sealed)), sha256Hex(sealed)
	writeBackupJSON(t, r, b)
}

func writeBackupJSON(t *testing.T, r *Repo, b *Backup) {
	data, _ := json.MarshalIndent(b, "", "  ")
	if err := os.WriteFile(filepath.Join(r.Dir, "backups", b.ID, backupFile), append(data, '\n'), filePerm); err != nil {
		t.Fatal(err)
	}
}

// A backup is the box's only if the box signed it: forged, edited or
// unsigned backups are refused before a byte of them is handed out, while
// the same content re-encrypted is still the box's.
func TestForgedBackupRefused(t *testing.T) {
	content := walBytes(3*contentChunk+500, 5)
	tests := []struct {
		name   string
		change func(t *testing.T, r *Repo, b *Backup)
		want   error
	}{
		{"genuine", func(*testing.T, *Repo, *Backup) {}, nil},
		{"same content re-encrypted", func(t *testing.T, r *Repo, b *Backup) { reseal(t, r, b, content) }, nil},
		{"content changed and re-encrypted", func(t *testing.T, r *Repo, b *Backup) {
			c := bytes.Clone(content)
			c[2*contentChunk+10] ^= 1
			reseal(t, r, b, c)
		}, ErrForged},
		{"content cut short", func(t *testing.T, r *Repo, b *Backup) { reseal(t, r, b, content[:contentChunk]) }, ErrForged},
		{"backup.sig removed", func(t *testing.T, r *Repo, b *Backup) {
			os.Remove(filepath.Join(r.Dir, "backups", b.ID, sigFile))
		}, ErrForged},
		{"start position edited", func(t *testing.T, r *Repo, b *Backup) { b.StartLSN += 0x1000000; writeBackupJSON(t, r, b) }, ErrForged},
		{"whole backup by another key", func(t *testing.T, r *Repo, b *Backup) {
			forged := &Repo{Dir: r.Dir, Info: r.Info, recips: r.recips, sign: forger}
			os.RemoveAll(filepath.Join(r.Dir, "backups", b.ID))
			*b = *writeBackup(t, forged, content)
		}, ErrForged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ids := testRepo(t)
			b := writeBackup(t, r, content)
			tt.change(t, r, b)
			got, err := readBase(r, b, ids)
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenFile and read: %v; want %v", err, tt.want)
			}
			if tt.want == nil && !bytes.Equal(got, content) {
				t.Errorf("read %d bytes; want the %d stored", len(got), len(content))
			}
			if tt.want != nil && len(got) > 2*contentChunk {
				t.Errorf("%d bytes were handed out before the forgery was found; want none past the last good chunk", len(got))
			}
		})
	}
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// A backup is hashed once on its way in: the signed statement lists each
// chunk's SHA-256 and no whole-file hash, and backups signed earlier, with
// a whole-file hash, still read.
func TestBackupContentHashedOnce(t *testing.T) {
	content := walBytes(3*contentChunk+500, 6)
	r, ids := testRepo(t)
	b := writeBackup(t, r, content)
	sigPath := filepath.Join(r.Dir, "backups", b.ID, sigFile)
	raw, err := os.ReadFile(sigPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeBackupSig(raw, r.sign.Public())
	if err != nil {
		t.Fatal(err)
	}
	c := st.content(b.Files[0])
	if c == nil || c.SHA256 != "" || len(c.Chunks) != 4 {
		t.Fatalf("signed content %+v; want 4 chunk hashes and no whole-file hash", c)
	}
	c.SHA256 = sha256Hex(content) // as backups signed before 2026-12 carry it
	if err := os.WriteFile(sigPath, EncodeBackupSig(r.sign, *st), filePerm); err != nil {
		t.Fatal(err)
	}
	got, err := readBase(r, b, ids)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("a backup signed with a whole-file hash: read %d bytes, %v; want the %d stored", len(got), err, len(content))
	}
}
