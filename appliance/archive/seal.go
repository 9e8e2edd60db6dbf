package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// Keys hold what the repository needs to seal and open files. Recipients
// are public and enough to write; Identities are needed only to read.
type Keys struct {
	Recipients []age.Recipient
	Identities []age.Identity
}

// ParseRecipients reads age recipients ("age1...").
func ParseRecipients(rs []string) ([]age.Recipient, error) {
	if len(rs) == 0 {
		return nil, errors.New("archive: no recipient given; create a key with 'clinicctl keygen' and pass its public recipient (age1...)")
	}
	var out []age.Recipient
	for _, s := range rs {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("archive: recipient %q is not an age public key (age1...): %w", s, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// LoadIdentities reads an age identity file as written by 'clinicctl keygen'.
func LoadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("archive: identity: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("archive: identity %s: not an age identity file: %w", path, err)
	}
	return ids, nil
}

// Encoders are expensive to build and hold a few MB each; reuse them. The
// settings keep memory small, which matters on the box: one worker, a 4 MB
// window, the fastest level (the clinic's CPU is busier than its disk).
var encoders = sync.Pool{New: func() any {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(4<<20), zstd.WithLowerEncoderMem(true))
	return e
}}

var decoders = sync.Pool{New: func() any {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
	return d
}}

// sealer writes age(zstd(plaintext)), or age(plaintext) when the data is
// already compressed.
type sealer struct {
	enc  io.WriteCloser
	zw   *zstd.Encoder
	dest io.Writer
}

func newSealer(dest io.Writer, recips []age.Recipient, compress bool) (*sealer, error) {
	return newTappedSealer(dest, recips, compress, nil)
}

// newTappedSealer is newSealer that also gives tap the content as it goes
// to age (after compression), for the backup's signature.
func newTappedSealer(dest io.Writer, recips []age.Recipient, compress bool, tap io.Writer) (*sealer, error) {
	enc, err := age.Encrypt(dest, recips...)
	if err != nil {
		return nil, fmt.Errorf("archive: encrypt: %w", err)
	}
	s := &sealer{enc: enc, dest: enc}
	if tap != nil {
		s.dest = io.MultiWriter(enc, tap)
	}
	if compress {
		s.zw = encoders.Get().(*zstd.Encoder)
		s.zw.Reset(s.dest)
		s.dest = s.zw
	}
	return s, nil
}

func (s *sealer) Write(p []byte) (int, error) { return s.dest.Write(p) }

func (s *sealer) Close() error {
	if s.zw != nil {
		err := s.zw.Close()
		s.zw.Reset(nil)
		encoders.Put(s.zw)
		s.zw = nil
		if err != nil {
			return err
		}
	}
	return s.enc.Close()
}

// opener reads what a sealer wrote.
type opener struct {
	io.Reader
	zr *zstd.Decoder
}

func open(r io.Reader, ids []age.Identity, compressed bool) (*opener, error) {
	return openChecked(r, ids, compressed, nil)
}

// openChecked is open that checks the content against c, chunk by chunk,
// before it is decompressed or handed on; c nil checks nothing.
func openChecked(r io.Reader, ids []age.Identity, compressed bool, c *Content) (*opener, error) {
	if len(ids) == 0 {
		return nil, errors.New("archive: no identity to decrypt with; pass --identity FILE")
	}
	dr, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("archive: this key cannot open the repository (it was encrypted to other recipients): %w", err)
		}
		return nil, fmt.Errorf("archive: decrypt: %w", err)
	}
	var src io.Reader = dr
	if c != nil {
		src = newCheckedReader(dr, c)
	}
	o := &opener{Reader: src}
	if compressed {
		o.zr = decoders.Get().(*zstd.Decoder)
		if err := o.zr.Reset(src); err != nil {
			return nil, err
		}
		o.Reader = o.zr
	}
	return o, nil
}

func (o *opener) Close() error {
	if o.zr != nil {
		o.zr.Reset(nil)
		decoders.Put(o.zr)
		o.zr = nil
	}
	return nil
}

// sealBytes seals a small buffer in one go.
func sealBytes(p []byte, recips []age.Recipient, compress bool) ([]byte, error) {
	var b bytes.Buffer
	s, err := newSealer(&b, recips, compress)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(p); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// openBytes opens a small sealed buffer.
func openBytes(p []byte, ids []age.Identity, compressed bool) ([]byte, error) {
	o, err := open(bytes.NewReader(p), ids, compressed)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}
