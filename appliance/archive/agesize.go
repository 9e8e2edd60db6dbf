package archive

import (
	"io"

	"filippo.io/age"
)

// ageChunk is the plaintext size of one chunk of age's payload stream; each
// chunk carries a 16-byte tag.
const ageChunk = 64 << 10

// ageOverhead is the size of an age file with an empty plaintext for the
// repository's recipients: the header, the payload nonce and one tag. The
// header's size depends only on the recipients (every X25519 stanza has the
// same length), so it is measured once.
func (r *Repo) ageOverhead() (int, error) {
	r.ageOnce.Do(func() {
		var c countWriter
		c.w = io.Discard
		s, err := age.Encrypt(&c, r.recips...)
		if err == nil {
			err = s.Close()
		}
		r.ageOver, r.ageErr = c.n, err
	})
	return r.ageOver, r.ageErr
}

// ageSize is the size of an age file of n plaintext bytes, given its
// overhead (ageOverhead): the last chunk may be full, and an empty
// plaintext still has one chunk.
func ageSize(overhead, n int) int {
	chunks := max(1, (n+ageChunk-1)/ageChunk)
	return overhead + n + (chunks-1)*16
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}
