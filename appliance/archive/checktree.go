package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// CheckTree checks a restored data directory against its backup's
// manifest: every file the manifest lists is there with its size and
// checksum. It returns what differs, nothing when all match.
func CheckTree(dir string, m *Manifest) []string {
	var bad []string
	for _, mf := range m.Files {
		name := mf.Name()
		if name == manifestName {
			continue
		}
		if err := checkFile(filepath.Join(dir, filepath.FromSlash(name)), mf); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", name, err))
		}
	}
	return bad
}

func checkFile(path string, mf ManifestFile) error {
	sum, format, err := newChecksum(mf.Algorithm)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := io.Discard
	if sum != nil {
		w = sum
	}
	n, err := io.Copy(w, f)
	switch {
	case err != nil:
		return err
	case n != mf.Size:
		return fmt.Errorf("%d bytes; the manifest says %d", n, mf.Size)
	case sum != nil && !strings.EqualFold(format(sum.Sum(nil)), mf.Checksum):
		return fmt.Errorf("checksum mismatch")
	}
	return nil
}
