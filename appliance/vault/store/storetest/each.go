package storetest

import (
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// Each runs f as two subtests: against a local store in a temporary
// directory, and against the S3 store on a real versitygw.
func Each(t *testing.T, f func(t *testing.T, st store.Store)) {
	t.Run("local", func(t *testing.T) {
		l, err := store.OpenLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		f(t, l)
	})
	t.Run("s3", func(t *testing.T) {
		f(t, StartVersityGW(t, Options{}).Open(t))
	})
}
