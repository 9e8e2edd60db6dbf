package offsite

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// FileLog is one of the box's hash-chained logs on its card, as the
// shipper sends it: JSON lines, each with its seq and hash, in files
// oldest first. The shipper reads the files while the box appends to them:
// a line cut short by an append in progress is left for the next round.
type FileLog struct {
	// Name is the log's name in heads: "custody" or "audit".
	Name string
	// Files returns the log's files, oldest first; a missing one is empty.
	Files func() []string
	// Keys sign the head sent with each batch.
	Keys chain.Keys
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// logLine is one entry of a log as the box wrote it.
type logLine struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	raw  []byte
}

func parseLine(b []byte) (logLine, error) {
	var l logLine
	if err := json.Unmarshal(b, &l); err != nil || l.Seq <= 0 || l.Hash == "" {
		return l, errors.New("not a log entry")
	}
	l.raw = bytes.Clone(b)
	return l, nil
}

// head signs the head at l.
func (f *FileLog) head(l logLine) chain.Head {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	return chain.SignHead(f.Keys, f.Name, l.Seq, l.Hash, now())
}

// last returns the log's last complete entry; Seq 0 when it has none.
func (f *FileLog) last() (logLine, error) {
	files := f.Files()
	for i := len(files) - 1; i >= 0; i-- {
		l, err := lastLine(files[i])
		if err != nil || l.Seq > 0 {
			return l, err
		}
	}
	return logLine{}, nil
}

// lastLine reads the last complete entry of one file.
func lastLine(path string) (logLine, error) {
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return logLine{}, nil
	}
	if err != nil {
		return logLine{}, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return logLine{}, err
	}
	n := min(fi.Size(), 2*int64(chain.MaxLine)+2)
	tail := make([]byte, n)
	if _, err := file.ReadAt(tail, fi.Size()-n); err != nil && !errors.Is(err, io.EOF) {
		return logLine{}, err
	}
	tail = tail[:bytes.LastIndexByte(tail, '\n')+1] // a line being written is not complete
	lines := bytes.Split(bytes.TrimSpace(tail), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if l, err := parseLine(bytes.TrimSpace(lines[i])); err == nil {
			return l, nil
		}
	}
	return logLine{}, nil
}

// since returns the complete entries numbered above seq, oldest first, as
// many as fit in max bytes (at least one). Files that end at or before seq
// are not read.
func (f *FileLog) since(seq int64, max int) ([]logLine, error) {
	var out []logLine
	size := 0
	for _, path := range f.Files() {
		if l, err := lastLine(path); err != nil || l.Seq <= seq {
			if err != nil {
				return nil, err
			}
			continue
		}
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		full := false
		_, err = chain.ReadLines(file, chain.MaxLine, func(b []byte) error {
			l, err := parseLine(b)
			switch {
			case err != nil || l.Seq <= seq || full:
			case len(out) > 0 && size+len(b) > max:
				full = true
			default:
				out, size = append(out, l), size+len(b)
			}
			return nil
		})
		file.Close()
		if err != nil || full {
			return out, err
		}
	}
	return out, nil
}
