package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// Tail returns up to n of the most recent records in the current file,
// oldest first.
func (l *Log) Tail(n int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs, _, err := Load(l.path)
	if err != nil {
		return nil, err
	}
	if len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	return recs, nil
}

// ReadFile reads the records of one log file, oldest first; a line it
// cannot read is an error naming it. It does not verify them.
func ReadFile(path string) ([]Record, error) {
	recs, bad, err := Load(path)
	if err == nil && len(bad) > 0 {
		err = fmt.Errorf("audit: read %s: %s", path, bad[0])
	}
	return recs, err
}

// Load reads the records of one log file, oldest first, skipping and
// returning the lines it cannot read (too long, not a record, or torn by a
// power cut) instead of failing on them. It does not verify them.
func Load(path string) ([]Record, []chain.BadLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var out []Record
	bad, err := chain.ReadLines(f, chain.MaxLine, func(line []byte) error {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("not an audit record: %w", err)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read %s: %w", path, err)
	}
	return out, bad, nil
}

// Files returns the log's files that exist, oldest first: the renamed ones
// (path.N down to path.1), then path.
func Files(path string) []string {
	var out []string
	for i := 64; i >= 1; i-- {
		if p := fmt.Sprintf("%s.%d", path, i); exists(p) {
			out = append(out, p)
		}
	}
	if exists(path) {
		out = append(out, path)
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// syncDir makes a rename or a new file in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
