package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Format 2 WAL files (hand-written: no library frames mixed codecs with a
// signature over their content). The plaintext of a complete segment or a
// history file is
//
//	"CBW3" frame... seal
//
// and the plaintext of each record of a partial segment is
//
//	"CBR3" offset(u32) length(u32) frame... seal
//
// where each frame is codec(u8) rawLength(u32) storedLength(u32) and the
// stored bytes, and the seal is a frame of codec 0xFF whose bytes are the
// statement (below) and the box's ed25519 signature of it. All integers are
// big-endian. The statement binds the content's digest to the database
// system, the timeline, the segment and the byte range, so a genuine frame
// cannot be passed off at another place.
//
// The magic says what the digest covers. In "CBW3" and "CBR3" files it is
// each frame as stored, header included (storedDigest). Files written
// before 2026-12 ("CBW2", "CBR2") digest each frame's decoded bytes, which
// let a frame be re-encoded without signing again but cost a SHA-256 pass
// over every byte of WAL: the largest single cost of draining a backlog on
// a machine with SHA instructions, and far larger on a Pi 4, whose cores
// have none. A frame as stored is a third (S2) to a tenth (zstd) of that
// while the decoding is deterministic, so signing it proves the decoded
// bytes just as well; re-encoding now means signing again, which only the
// box can do. Readers take both.
const (
	magicWAL           = "CBW3"
	magicRecord        = "CBR3"
	magicWALDecoded    = "CBW2" // digest of decoded bytes, written before 2026-12
	magicRecordDecoded = "CBR2"
	frameHdr           = 9
	statementSz        = 4 + 1 + 8 + 4 + 8 + 4 + 4 + 4 + 32
	sealSz             = statementSz + 64
	walPurpose         = "wal"
)

// Codec says how a frame's bytes are stored.
type Codec byte

// The codecs of WAL frames.
const (
	CodecRaw  Codec = 0 // stored as received
	CodecZstd Codec = 1 // zstd, one frame
	CodecS2   Codec = 2 // S2 block (klauspost/compress/s2): fast, for catching up
	codecSeal Codec = 0xFF
)

// Kinds of signed WAL statements.
const (
	sealKindSegment byte = 1
	sealKindRecord  byte = 2
	sealKindHistory byte = 3
)

// walStatement is what the box signs for a WAL file or record.
type walStatement struct {
	kind   byte
	system uint64
	tli    uint32
	segNo  uint64
	offset uint32
	length uint32
	frames uint32
	digest [32]byte
}

func (s walStatement) bytes() []byte {
	b := make([]byte, 0, statementSz)
	b = append(b, "CBS2"...)
	b = append(b, s.kind)
	b = binary.BigEndian.AppendUint64(b, s.system)
	b = binary.BigEndian.AppendUint32(b, s.tli)
	b = binary.BigEndian.AppendUint64(b, s.segNo)
	b = binary.BigEndian.AppendUint32(b, s.offset)
	b = binary.BigEndian.AppendUint32(b, s.length)
	b = binary.BigEndian.AppendUint32(b, s.frames)
	return append(b, s.digest[:]...)
}

// digester accumulates the digest of a file's frames: SHA-256 over each
// frame's raw length and SHA-256 (frameSum), so frames can be hashed in
// parallel.
type digester struct {
	sum    [32]byte
	buf    []byte
	frames uint32
	length uint32
}

func (d *digester) add(raw int, sum [32]byte) {
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(raw))
	d.buf = append(d.buf, sum[:]...)
	d.frames++
	d.length += uint32(raw)
}

func (d *digester) digest() [32]byte { return sha256.Sum256(d.buf) }

func (d *digester) reset() { d.buf, d.frames, d.length = d.buf[:0], 0, 0 }

// frameSum is a frame's SHA-256 as a storedDigest file's digest takes it:
// over the frame as stored, header included, so that its codec and lengths
// are signed too.
func frameSum(frame []byte) [32]byte { return sha256.Sum256(frame) }

// cutMagic removes a WAL file's magic, stored or decoded (its older form),
// from p and says which it was.
func cutMagic(p []byte, stored, decoded string) (rest []byte, storedDigest, ok bool) {
	if rest, ok := bytes.CutPrefix(p, []byte(stored)); ok {
		return rest, true, true
	}
	rest, ok = bytes.CutPrefix(p, []byte(decoded))
	return rest, false, ok
}

// appendFrame appends a frame of stored bytes to dst.
func appendFrame(dst []byte, c Codec, raw int, stored []byte) []byte {
	dst = append(dst, make([]byte, frameHdr)...)
	putFrameHeader(dst[len(dst)-frameHdr:], c, raw, len(stored))
	return append(dst, stored...)
}

// putFrameHeader writes a frame's header into hdr (frameHdr bytes).
func putFrameHeader(hdr []byte, c Codec, raw, stored int) {
	hdr[0] = byte(c)
	binary.BigEndian.PutUint32(hdr[1:], uint32(raw))
	binary.BigEndian.PutUint32(hdr[5:], uint32(stored))
}

// systemID parses the repository's system identifier.
func (r *Repo) systemID() uint64 { n, _ := strconv.ParseUint(r.Info.SystemID, 10, 64); return n }

// seal appends the signed seal frame for st to dst.
func (r *Repo) seal(dst []byte, st walStatement) []byte {
	st.system = r.systemID()
	msg := st.bytes()
	return appendFrame(dst, codecSeal, 0, append(msg, r.sign.Sign(walPurpose, msg)...))
}

var errNoSeal = errors.New("the file ends without the box's signature (truncated or forged)")

// decodeFrames decodes the frames of p into out (whose length bounds the
// decoded bytes), stopping at the seal, and checks the seal against want
// (its kind, timeline, segment and range; the digest is computed here, of
// each frame as stored or decoded as storedDigest says). It returns the
// decoded bytes.
func (r *Repo) decodeFrames(p []byte, out []byte, want walStatement, dec *zstd.Decoder, storedDigest bool) (int, error) {
	var d digester
	n := 0
	for len(p) > 0 {
		if len(p) < frameHdr {
			return n, errors.New("a frame header is cut short")
		}
		c, raw, stored := Codec(p[0]), int(binary.BigEndian.Uint32(p[1:])), int(binary.BigEndian.Uint32(p[5:]))
		if stored > len(p)-frameHdr {
			return n, fmt.Errorf("a frame claims %d bytes; only %d are left", stored, len(p)-frameHdr)
		}
		frame, body := p[:frameHdr+stored], p[frameHdr:frameHdr+stored]
		p = p[frameHdr+stored:]
		if c == codecSeal {
			if len(p) != 0 {
				return n, errors.New("data follows the signature")
			}
			want.length, want.frames, want.digest = d.length, d.frames, d.digest()
			return n, r.checkSeal(body, want)
		}
		if raw > len(out)-n {
			return n, fmt.Errorf("a frame of %d bytes does not fit (%d left)", raw, len(out)-n)
		}
		if err := decodeFrame(c, body, out[n:n+raw], dec); err != nil {
			return n, err
		}
		if storedDigest {
			d.add(raw, frameSum(frame))
		} else {
			d.add(raw, sha256.Sum256(out[n:n+raw]))
		}
		n += raw
	}
	return n, errNoSeal
}

// decodeFrame decodes one frame's stored bytes into out, which must end up
// exactly full.
func decodeFrame(c Codec, body, out []byte, dec *zstd.Decoder) error {
	var got []byte
	var err error
	switch c {
	case CodecRaw:
		got = append(out[:0], body...)
	case CodecZstd:
		got, err = dec.DecodeAll(body, out[:0])
	case CodecS2:
		if l, lerr := s2.DecodedLen(body); lerr != nil || l != len(out) {
			return fmt.Errorf("an S2 frame's length is wrong: %v", lerr)
		}
		got, err = s2.Decode(out, body)
	default:
		return fmt.Errorf("a frame has unknown codec %d: update clinicctl", c)
	}
	switch {
	case err != nil:
		return fmt.Errorf("a frame does not decode: %w", err)
	case len(got) != len(out) || len(out) > 0 && &got[0] != &out[0]:
		return fmt.Errorf("a frame decodes to %d bytes, not %d", len(got), len(out))
	}
	return nil
}

// checkSeal checks a seal frame's statement and signature against want.
func (r *Repo) checkSeal(body []byte, want walStatement) error {
	if len(body) != sealSz {
		return fmt.Errorf("%w: the signature block has %d bytes", ErrForged, len(body))
	}
	want.system = r.systemID()
	msg := want.bytes()
	if !bytes.Equal(body[:statementSz], msg) {
		return fmt.Errorf("%w: the signed statement is for other content or another place (%s)", ErrForged, describeStatement(body[:statementSz]))
	}
	return r.verifySig(walPurpose, msg, body[statementSz:])
}

func describeStatement(b []byte) string {
	if len(b) != statementSz || string(b[:4]) != "CBS2" {
		return "not a statement"
	}
	return fmt.Sprintf("kind %d, timeline %d, segment %d, bytes %d+%d", b[4], binary.BigEndian.Uint32(b[13:]),
		binary.BigEndian.Uint64(b[17:]), binary.BigEndian.Uint32(b[25:]), binary.BigEndian.Uint32(b[29:]))
}
