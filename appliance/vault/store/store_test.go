package store_test

import (
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
)

func TestLocalConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func() store.Store {
			l, err := store.OpenLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}
	})
}

func TestS3Conformance(t *testing.T) {
	srv := storetest.StartVersityGW(t, storetest.Options{})
	storetest.Run(t, srv.Backend)
}
