package chain

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLine bounds one line of a log the box reads back (the custody log,
// the audit log): an entry is well under a kilobyte, so a longer line is
// damage or an attack, skipped and reported, never held whole in memory.
const MaxLine = 64 << 10

// BadLine is a line of a log file that could not be read: skipped, and
// reported.
type BadLine struct {
	// Line numbers lines from 1.
	Line int
	// Torn reports whether it is the last line cut short without its
	// newline, as a power cut in the middle of an append leaves it.
	Torn   bool
	Reason string
}

func (b BadLine) String() string {
	if b.Torn {
		return fmt.Sprintf("line %d is torn (cut short by a power cut during an append): %s", b.Line, b.Reason)
	}
	return fmt.Sprintf("line %d is skipped: %s", b.Line, b.Reason)
}

// ReadLines calls each for every non-blank line of r, without its newline.
// A line longer than max bytes, or one each rejects, is skipped and
// returned as a BadLine; the error is only for r failing.
func ReadLines(r io.Reader, max int, each func(line []byte) error) ([]BadLine, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var bad []BadLine
	var line []byte
	for n := 1; ; n++ {
		var long bool
		var size int
		var err error
		line, long, size, err = readLine(br, line[:0], max)
		if err != nil && !errors.Is(err, io.EOF) {
			return bad, err
		}
		torn := err != nil && size > 0
		switch trimmed := bytes.TrimSpace(line); {
		case long:
			bad = append(bad, BadLine{Line: n, Torn: torn, Reason: fmt.Sprintf("it is %d bytes long, more than the %d a log line may be", size, max)})
		case len(trimmed) == 0:
		default:
			if perr := each(trimmed); perr != nil {
				bad = append(bad, BadLine{Line: n, Torn: torn, Reason: perr.Error()})
			}
		}
		if err != nil {
			return bad, nil
		}
	}
}

// readLine appends the next line of br to line, keeping at most max+1
// bytes: long reports a longer one, whose size is still counted whole.
func readLine(br *bufio.Reader, line []byte, max int) (_ []byte, long bool, size int, err error) {
	for {
		var chunk []byte
		chunk, err = br.ReadSlice('\n')
		size += len(chunk)
		if !long && len(line)+len(chunk) <= max+1 {
			line = append(line, chunk...)
		} else {
			long = true
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, long, size, err
		}
	}
}
