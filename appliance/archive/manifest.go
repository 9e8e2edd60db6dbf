package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"strings"
)

// Manifest is PostgreSQL's backup manifest.
type Manifest struct {
	Version   int             `json:"PostgreSQL-Backup-Manifest-Version"`
	Files     []ManifestFile  `json:"Files"`
	WALRanges []ManifestRange `json:"WAL-Ranges"`
	Checksum  string          `json:"Manifest-Checksum"`
}

// ManifestFile is one file of the data directory.
type ManifestFile struct {
	Path        string `json:"Path"`
	EncodedPath string `json:"Encoded-Path"`
	Size        int64  `json:"Size"`
	Algorithm   string `json:"Checksum-Algorithm"`
	Checksum    string `json:"Checksum"`
}

// ManifestRange is WAL the backup needs to be consistent.
type ManifestRange struct {
	Timeline uint32 `json:"Timeline"`
	Start    string `json:"Start-LSN"`
	End      string `json:"End-LSN"`
}

// Name returns the file's path, decoding Encoded-Path.
func (f ManifestFile) Name() string {
	if f.EncodedPath != "" {
		b, err := hex.DecodeString(f.EncodedPath)
		if err == nil {
			return string(b)
		}
	}
	return f.Path
}

// ParseManifest reads a manifest and checks its own checksum: SHA-256 of the
// text up to and including the next-to-last newline.
func ParseManifest(text []byte) (*Manifest, error) {
	m := &Manifest{}
	if err := json.Unmarshal(text, m); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	body := bytes.TrimRight(text, "\n")
	cut := bytes.LastIndexByte(body, '\n')
	if cut < 0 {
		return nil, errors.New("manifest has no checksum line")
	}
	sum := sha256.Sum256(text[:cut+1])
	if !strings.EqualFold(hex.EncodeToString(sum[:]), m.Checksum) {
		return nil, errors.New("manifest checksum does not match its contents")
	}
	return m, nil
}

// newChecksum returns a hash for a manifest algorithm and how to print it.
func newChecksum(alg string) (hash.Hash, func([]byte) string, error) {
	switch strings.ToUpper(alg) {
	case "CRC32C":
		// PostgreSQL prints the CRC's little-endian bytes in hex.
		return crc32.New(crc32.MakeTable(crc32.Castagnoli)), func(s []byte) string {
			var le [4]byte
			binary.LittleEndian.PutUint32(le[:], binary.BigEndian.Uint32(s))
			return hex.EncodeToString(le[:])
		}, nil
	case "SHA256":
		return sha256.New(), hex.EncodeToString, nil
	case "NONE", "":
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("unsupported checksum algorithm %q", alg)
}
