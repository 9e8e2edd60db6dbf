// Package archive is clinicbox's backup repository, the drive and vault
// steps of the data path: the on-disk format on a drive or in the vault (see
// README.md), encryption, verification, listing and retention.
package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/jackc/pglogrepl"
)

// LSN is a position in the write-ahead log.
type LSN = pglogrepl.LSN

// FormatVersion is the repository format this code writes. It reads
// format 1 too (unsigned, reported as such).
const FormatVersion = 2

const infoFile = "clinicbox-repo.json"

// Info identifies a repository and the database system it belongs to. It is
// stored in plain text: it holds no secret and no patient data.
type Info struct {
	Format        int       `json:"format"`
	SystemID      string    `json:"system_id"`
	SegmentSize   uint64    `json:"wal_segment_size"`
	ServerVersion int       `json:"server_version"`
	Created       time.Time `json:"created"`
	// Recipients are the public keys every file is encrypted to.
	Recipients []string `json:"recipients"`
	// Signer is the public key of the box that signs the repository's
	// files (format 2). Informational: readers trust the key the operator
	// gives them, not this one.
	Signer string `json:"signer,omitempty"`
	// SignedFrom is where signing began in a repository that was format 1
	// before: files before it may be unsigned. Zero for a repository
	// created as format 2.
	SignedFrom LSN `json:"signed_from,omitzero"`
}

// Repo is an open repository in a directory.
type Repo struct {
	Dir    string
	Info   Info
	recips []age.Recipient
	sign   *signer.Key       // signs what is written; nil: read only
	trust  *signer.PublicKey // checks what is read; nil: no anchor
	// fetch reads stored backup files (FetchFrom); nil: from Dir.
	fetch func(rel string) (io.ReadCloser, error)
	// listing replaces the wal directory's entries (UseListing).
	listing []Listed

	ageOnce sync.Once // measures ageOver
	ageOver int       // bytes age adds to an empty file for recips
	ageErr  error
}

// ErrOtherSystem means the repository holds backups of another database.
var ErrOtherSystem = errors.New("the repository belongs to another database system")

// ErrNotRepo means the directory holds no repository.
var ErrNotRepo = errors.New("not a clinicbox repository")

// Open opens an existing repository.
func Open(dir string) (*Repo, error) {
	b, err := readBounded(filepath.Join(dir, infoFile), 64<<10)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("archive: %s: %w (no %s); check the path, or create one with 'clinicctl backup'", dir, ErrNotRepo, infoFile)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	r := &Repo{Dir: dir}
	if err := json.Unmarshal(b, &r.Info); err != nil {
		return nil, fmt.Errorf("archive: %s is damaged: %w", infoFile, err)
	}
	if r.Info.Format < 1 || r.Info.Format > FormatVersion {
		return nil, fmt.Errorf("archive: %s has format %d; this clinicbox reads formats 1 to %d: update clinicctl", dir, r.Info.Format, FormatVersion)
	}
	if r.recips, err = ParseRecipients(r.Info.Recipients); err != nil {
		return nil, err
	}
	return r, nil
}

// Create opens the repository in dir for the given system, creating it when
// the directory is empty or missing. It refuses a directory that holds
// anything else, and a repository of another database system. Concurrent
// calls (a stream and a backup starting together) are serialized. What is
// written through the repository is signed with k (a format 1 repository
// becomes format 2 here).
func Create(dir string, info Info, k *signer.Key) (*Repo, error) {
	if k == nil {
		return nil, ErrNoSigner
	}
	r, err := create(dir, info, k)
	if err != nil {
		return nil, err
	}
	if err := r.signWith(k); err != nil {
		return nil, err
	}
	r.Trust(k.Public())
	return r, nil
}

func create(dir string, info Info, k *signer.Key) (*Repo, error) {
	if r, err := Open(dir); err == nil || !errors.Is(err, ErrNotRepo) {
		return checkSame(r, err, dir, info)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("archive: %w", explainFS(err))
	}
	l, err := lockCreate(dir)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if r, err := Open(dir); err == nil || !errors.Is(err, ErrNotRepo) {
		return checkSame(r, err, dir, info)
	}
	if err := checkEmpty(dir); err != nil {
		return nil, err
	}
	if k != nil {
		info.Format, info.Signer, info.SignedFrom = FormatVersion, k.Public().String(), 0
	}
	if info.Created.IsZero() {
		info.Created = time.Now().UTC()
	}
	r := &Repo{Dir: dir, Info: info}
	if r.recips, err = ParseRecipients(info.Recipients); err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(dir, "backups"), filepath.Join(dir, "wal")} {
		if err := mkdirAll(d); err != nil {
			return nil, err
		}
	}
	if err := r.writeInfo(); err != nil {
		return nil, err
	}
	return r, nil
}

// lockCreate takes the lock that lets one process at a time create a
// repository in dir.
func lockCreate(dir string) (*os.File, error) {
	l, err := os.OpenFile(filepath.Join(dir, ".lock-create"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", explainFS(err))
	}
	if err := syscall.Flock(int(l.Fd()), syscall.LOCK_EX); err != nil {
		l.Close()
		return nil, fmt.Errorf("archive: lock: %w", err)
	}
	return l, nil
}

// checkEmpty refuses a directory that holds anything but a filesystem's
// lost+found and locks: a repository goes only where nothing else is.
func checkEmpty(dir string) error {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "lost+found") && !strings.HasPrefix(e.Name(), ".lock-") {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 {
		return fmt.Errorf("archive: %s is not empty and holds no repository (found %s); choose an empty directory", dir, strings.Join(names[:min(3, len(names))], ", "))
	}
	return nil
}

// writeInfo stores the repository's identity, clinicbox-repo.json.
func (r *Repo) writeInfo() error {
	b, _ := json.MarshalIndent(r.Info, "", "  ")
	return writeFileAtomic(filepath.Join(r.Dir, infoFile), append(b, '\n'))
}

// checkSame accepts an existing repository only for the same system and keys.
func checkSame(r *Repo, err error, dir string, info Info) (*Repo, error) {
	if err != nil {
		return nil, err
	}
	if r.Info.SystemID != info.SystemID {
		return nil, fmt.Errorf("archive: %s: %w (repository: system %s; server: system %s); use another drive or directory for this server",
			dir, ErrOtherSystem, r.Info.SystemID, info.SystemID)
	}
	if len(info.Recipients) > 0 && !sameSet(r.Info.Recipients, info.Recipients) {
		return nil, fmt.Errorf("archive: %s is encrypted to recipients %v, not %v; pass the same --recipient keys as before", dir, r.Info.Recipients, info.Recipients)
	}
	return r, nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// lock takes an exclusive advisory lock on a file in the repository. It
// returns nil, nil when another process holds it.
func (r *Repo) lock(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(r.Dir, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("archive: lock: %w", explainFS(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("archive: lock: %w", err)
	}
	return f, nil
}
