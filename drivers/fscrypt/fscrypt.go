// Package fscrypt makes scratch directories for restore drills (restore step
// of the data path) whose contents the kernel encrypts with a random key
// that lives only in the kernel (ext4 encryption, policy version 2), so
// nothing written there is readable after a power cut or on another machine.
package fscrypt

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnsupported means the filesystem cannot encrypt directories: it is
// not ext4 (or f2fs), or it was made without the encrypt feature.
var ErrUnsupported = errors.New("fscrypt: the filesystem does not support encryption")

// keySize is the master key's size; the kernel derives the per-file keys.
const keySize = 64

// prefix names the directories New makes, so Sweep finds them.
const prefix = "clinicbox-scratch-"

// Dir is an encrypted directory and the identifier of its key in the
// filesystem's keyring.
type Dir struct {
	Path string
	id   [16]byte
}

// New makes an encrypted directory under parent with a fresh random key,
// which is added to the kernel and never written anywhere. Remove the
// directory with Remove; after a power cut its contents are ciphertext
// under names the kernel also encrypted, which Sweep deletes.
func New(parent string) (*Dir, error) {
	path, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, fmt.Errorf("fscrypt: %w", err)
	}
	d := &Dir{Path: path}
	// Others may pass through (the drill's PostgreSQL runs as its own
	// user); the key is in the filesystem, for every user alike.
	if err := os.Chmod(path, 0o711); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("fscrypt: %w", err)
	}
	if err := d.setup(); err != nil {
		os.Remove(path)
		return nil, err
	}
	return d, nil
}

func (d *Dir) setup() error {
	f, err := os.Open(d.Path)
	if err != nil {
		return fmt.Errorf("fscrypt: %w", err)
	}
	defer f.Close()
	key := make([]byte, keySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("fscrypt: key: %w", err)
	}
	loadCrypto()
	if d.id, err = addKey(f, key); err != nil {
		return err
	}
	policy := unix.FscryptPolicyV2{Version: unix.FSCRYPT_POLICY_V2, Contents_encryption_mode: unix.FSCRYPT_MODE_AES_256_XTS,
		Filenames_encryption_mode: unix.FSCRYPT_MODE_AES_256_CTS, Flags: unix.FSCRYPT_POLICY_FLAGS_PAD_32, Master_key_identifier: d.id}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.FS_IOC_SET_ENCRYPTION_POLICY, uintptr(unsafe.Pointer(&policy)))
	if errno != 0 {
		removeKey(f, d.id)
		return fmt.Errorf("fscrypt: set policy on %s: %w", d.Path, unsupported(errno))
	}
	return nil
}

// addKey adds key to the filesystem's keyring and returns its identifier.
// The argument is the fixed header followed by the raw key
// (struct fscrypt_add_key_arg in linux/fscrypt.h).
func addKey(f *os.File, key []byte) ([16]byte, error) {
	var id [16]byte
	hdr := int(unsafe.Sizeof(unix.FscryptAddKeyArg{}))
	buf := make([]byte, hdr+len(key))
	defer clear(buf)
	arg := (*unix.FscryptAddKeyArg)(unsafe.Pointer(&buf[0]))
	arg.Key_spec.Type = unix.FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER
	arg.Raw_size = uint32(len(key))
	copy(buf[hdr:], key)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.FS_IOC_ADD_ENCRYPTION_KEY, uintptr(unsafe.Pointer(&buf[0])))
	if errno == unix.ENOENT {
		return id, fmt.Errorf("fscrypt: add key: %w (%v: the kernel lacks hmac(sha512), which keys need; its module sha512_generic is not in /lib/modules or did not load)", ErrUnsupported, errno)
	}
	if errno != 0 {
		return id, fmt.Errorf("fscrypt: add key: %w", unsupported(errno))
	}
	copy(id[:], arg.Key_spec.U[:16])
	return id, nil
}

// removeKey takes the key out of the kernel: files still open keep their
// keys until closed; the rest become unreadable at once.
func removeKey(f *os.File, id [16]byte) error {
	var arg unix.FscryptRemoveKeyArg
	arg.Key_spec.Type = unix.FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER
	copy(arg.Key_spec.U[:], id[:])
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.FS_IOC_REMOVE_ENCRYPTION_KEY, uintptr(unsafe.Pointer(&arg)))
	if errno != 0 {
		return fmt.Errorf("fscrypt: remove key: %w", errno)
	}
	return nil
}

func unsupported(errno unix.Errno) error {
	if errno == unix.EOPNOTSUPP || errno == unix.ENOTTY {
		return fmt.Errorf("%w (%v); make it with the encrypt feature (mkfs.ext4 -O encrypt, or tune2fs -O encrypt)", ErrUnsupported, errno)
	}
	return errno
}

// Remove deletes the directory, then takes its key out of the kernel.
func (d *Dir) Remove() error {
	rmErr := os.RemoveAll(d.Path)
	f, err := os.Open(filepath.Dir(d.Path))
	if err != nil {
		return errors.Join(rmErr, fmt.Errorf("fscrypt: %w", err))
	}
	defer f.Close()
	return errors.Join(rmErr, removeKey(f, d.id))
}

// Sweep deletes the directories New made under parent that were never
// removed (a power cut, a crash): without their keys they hold only
// ciphertext, which is deleted all the same. Call it at start-up.
func Sweep(parent string) error {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fscrypt: sweep %s: %w", parent, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			errs = append(errs, os.RemoveAll(filepath.Join(parent, e.Name())))
		}
	}
	return errors.Join(errs...)
}
