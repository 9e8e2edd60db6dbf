package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/clinicbox/clinicbox/appliance/audit"
)

// argonParams are Argon2id's cost: OWASP's recommended minimum (19 MiB,
// two passes), which a Raspberry Pi computes in well under a second. The
// parameters are stored with each hash, so raising them later keeps old
// hashes working. Tests lower them.
var argonParams = struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}{19 * 1024, 2, 1}

// minPassword is the shortest box password accepted.
const minPassword = 10

func passwordPath(stateDir string) string { return filepath.Join(stateDir, "web-password") }

// passwordFile is the LAN password's hash on disk, in the PHC string
// format: $argon2id$v=19$m=...,t=...,p=...$salt$hash.
type passwordFile struct {
	path string
	// mu serializes setting the password, so two first visitors cannot
	// both set it.
	mu sync.Mutex
}

// isSet reports whether a password has been set.
func (p *passwordFile) isSet() bool {
	_, err := os.Stat(p.path)
	return err == nil
}

// identity identifies the password set now (a hash of the stored line,
// which differs for every password set, even the same one twice), or ""
// when none is set or it cannot be read.
func (p *passwordFile) identity() string {
	b, err := os.ReadFile(p.path)
	if err != nil || len(b) == 0 {
		return ""
	}
	sum := sha256.Sum256(b)
	return string(sum[:])
}

var errPasswordSet = errors.New("the box password is already set; log in with it")

// set stores the hash of pw, unless a password is already set.
func (p *passwordFile) set(pw string) error {
	if len(pw) < minPassword {
		return fmt.Errorf("choose a password of at least %d characters", minPassword)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	salt := make([]byte, 16)
	rand.Read(salt)
	a := argonParams
	sum := argon2.IDKey([]byte(pw), salt, a.time, a.memory, a.threads, 32)
	b64 := base64.RawStdEncoding
	line := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s\n", argon2.Version, a.memory, a.time, a.threads, b64.EncodeToString(salt), b64.EncodeToString(sum))
	f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return errPasswordSet
	}
	if err != nil {
		return fmt.Errorf("web: set password: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		os.Remove(p.path)
		return fmt.Errorf("web: set password: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(p.path)
		return fmt.Errorf("web: set password: %w", err)
	}
	return f.Close()
}

// check reports whether pw is the box password.
func (p *passwordFile) check(pw string) (bool, error) {
	b, err := os.ReadFile(p.path)
	if err != nil {
		return false, fmt.Errorf("web: check password: %w", err)
	}
	var v int
	var memory, time uint32
	var threads uint8
	parts := strings.Split(strings.TrimSpace(string(b)), "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, fmt.Errorf("web: check password: %s is not an argon2id hash", p.path)
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, fmt.Errorf("web: check password: %s: unsupported version %q", p.path, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil {
		return false, fmt.Errorf("web: check password: %s: parameters %q: %w", p.path, parts[3], err)
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err := errors.Join(err1, err2); err != nil || len(want) == 0 {
		return false, fmt.Errorf("web: check password: %s: bad encoding: %v", p.path, err)
	}
	got := argon2.IDKey([]byte(pw), salt, time, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// reset removes the password, so that the next visit sets a new one.
func (p *passwordFile) reset() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("web: reset password: %w", err)
	}
	d, err := os.Open(filepath.Dir(p.path))
	if err != nil {
		return fmt.Errorf("web: reset password: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// ResetPassword clears the LAN password and logs every browser out; the
// next visit to the page sets a new password, as on the first day. It is
// for someone at the box (the button held down), and is audited as who:
// setup opens for ten minutes, and a new setup code is shown at the box.
func (s *Server) ResetPassword(who string) error {
	err := s.password.reset()
	s.sessions.clear()
	rec := audit.Record{Time: s.now(), Caller: who, Role: RoleStaff, Action: "reset password", Allowed: err == nil, Why: "held the box's button"}
	if err != nil {
		rec.Why = err.Error()
	}
	if _, aerr := s.cfg.Audit.Append(rec); aerr != nil {
		s.log.Error("audit", "op", "reset password", "err", aerr)
	}
	if err == nil {
		s.openSetup(who, "the password was cleared at the box")
		s.newCode()
	}
	return err
}
