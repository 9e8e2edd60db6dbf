package fscrypt

import (
	"errors"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Adding a key derives the kernel's key identifier with HKDF-SHA512, so the
// kernel needs hmac(sha512). Some kernels (the Raspberry Pi's) build
// SHA-512 as a module, and a gokrazy system loads none by itself: without
// it adding a key fails with ENOENT. The module ships in the image's
// /lib/modules; it is loaded once, before the first key.
var cryptoModules = []string{"kernel/crypto/sha512_generic.ko"}

// modulesDir is where the running kernel's modules are.
var modulesDir = func() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
}

var loadOnce sync.Once

// loadCrypto loads the crypto modules the running kernel has as files;
// one built in, already loaded, or absent is no error: adding the key
// then says what is missing.
func loadCrypto() {
	loadOnce.Do(func() {
		dir := modulesDir()
		if dir == "" {
			return
		}
		for _, m := range cryptoModules {
			loadModule(filepath.Join(dir, m))
		}
	})
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}
