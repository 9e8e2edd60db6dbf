package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// An incremental backup must rebuild the server's tar byte for byte (the
// restore checks it like any other), so it walks the tar as raw 512-byte
// records instead of through archive/tar, which re-encodes headers: every
// byte that is not a regular file's data is kept as it is.

const (
	tarBlock   = 512
	maxTarMeta = 64 << 10 // a pax or GNU long-name record
)

// tarVisitor receives a tar stream in order: meta gets headers, padding
// and the end, verbatim; file gets each regular file's data.
type tarVisitor struct {
	meta func(p []byte) error
	file func(path string, size int64, body io.Reader) error
}

// walkRawTar hands every byte of the tar in rd to v.
func walkRawTar(rd io.Reader, v tarVisitor) error {
	w := rawTar{rd: rd, v: v, hdr: make([]byte, tarBlock)}
	for {
		done, err := w.next()
		if done || err != nil {
			return err
		}
	}
}

// rawTar is a walk through a tar: the header in hand, and the long name
// an extended header gave the entry it precedes.
type rawTar struct {
	rd       io.Reader
	v        tarVisitor
	hdr      []byte
	longName string
}

// next handles one header and what follows it; done is true after the
// end of the archive.
func (w *rawTar) next() (done bool, err error) {
	if _, err := io.ReadFull(w.rd, w.hdr); err != nil {
		return false, fmt.Errorf("tar header: %w", err)
	}
	if err := w.v.meta(w.hdr); err != nil {
		return false, err
	}
	if isZeroBlock(w.hdr) {
		return true, copyMeta(w.rd, w.v.meta) // the end, and whatever padding follows
	}
	size, err := tarSize(w.hdr[124:136])
	if err != nil {
		return false, err
	}
	pad := (tarBlock - size%tarBlock) % tarBlock
	switch typ := w.hdr[156]; typ {
	case 'x', 'L':
		w.longName, err = readLongName(w.rd, typ, size+pad, w.v.meta)
		return false, err
	case '0', 0, '7':
		if err := w.file(size); err != nil {
			return false, err
		}
	default:
		pad += size // anything else's data is kept as it is
	}
	w.longName = ""
	return false, copyN(w.rd, pad, w.v.meta)
}

// file hands a regular file's data to the visitor, which must read all
// of it.
func (w *rawTar) file(size int64) error {
	name := w.longName
	if name == "" {
		name = ustarName(w.hdr)
	}
	lr := &io.LimitedReader{R: w.rd, N: size}
	if err := w.v.file(name, size, lr); err != nil {
		return err
	}
	if lr.N != 0 {
		return fmt.Errorf("tar: %s: data cut short", name)
	}
	return nil
}

// readLongName reads a pax or GNU long-name record and returns the name
// it gives the next entry ("" when it gives none).
func readLongName(rd io.Reader, typ byte, n int64, meta func([]byte) error) (string, error) {
	if n > maxTarMeta {
		return "", fmt.Errorf("tar: a %d-byte extended header is not one PostgreSQL writes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd, b); err != nil {
		return "", fmt.Errorf("tar: extended header: %w", err)
	}
	if err := meta(b); err != nil {
		return "", err
	}
	if typ == 'L' {
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	for rec := range strings.SplitSeq(string(b), "\n") {
		if _, kv, ok := strings.Cut(rec, " "); ok {
			if v, ok := strings.CutPrefix(kv, "path="); ok {
				return v, nil
			}
		}
	}
	return "", nil
}

// ustarName is the name in a ustar header: prefix/name.
func ustarName(h []byte) string {
	name := cstring(h[0:100])
	if string(h[257:262]) == "ustar" {
		if p := cstring(h[345:500]); p != "" {
			name = p + "/" + name
		}
	}
	return name
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// tarSize reads a header's size field: octal, or base-256 for large files.
func tarSize(f []byte) (int64, error) {
	var n int64
	if f[0]&0x80 != 0 {
		for i, c := range f {
			if i == 0 {
				c &= 0x7f
			}
			if n > maxEntrySize {
				break
			}
			n = n<<8 | int64(c)
		}
	} else {
		s := strings.Trim(string(f), " \x00")
		if s == "" {
			return 0, nil
		}
		v, err := strconv.ParseInt(s, 8, 64)
		if err != nil {
			return 0, fmt.Errorf("tar: bad size field %q", s)
		}
		n = v
	}
	if n < 0 || n > maxEntrySize {
		return 0, fmt.Errorf("tar: an entry of %d bytes is not one PostgreSQL writes", n)
	}
	return n, nil
}

func isZeroBlock(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// copyN hands n bytes of rd to meta in pieces.
func copyN(rd io.Reader, n int64, meta func([]byte) error) error {
	buf := make([]byte, min(n, 32<<10))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := io.ReadFull(rd, buf[:k]); err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if err := meta(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// copyMeta hands the rest of rd to meta, at most a few blocks: a tar ends
// with zero blocks, and PostgreSQL writes two.
func copyMeta(rd io.Reader, meta func([]byte) error) error {
	rest, err := io.ReadAll(io.LimitReader(rd, 64*tarBlock+1))
	if err != nil {
		return err
	}
	if len(rest) > 64*tarBlock {
		return errors.New("tar: data after the end of the archive")
	}
	return meta(rest)
}
