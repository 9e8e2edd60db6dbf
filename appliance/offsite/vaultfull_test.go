package offsite

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// A vault that refuses WAL because the practice's quota is used up is
// told apart from one out of reach: the status says so, in the vault's
// words.
func TestVaultFullShows(t *testing.T) {
	const words = "vault: the vault is full for this practice: ask the vault's operator to raise the quota"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInsufficientStorage)
		json.NewEncoder(w).Encode(wire.Problem{Code: "quota", Error: words})
	}))
	defer srv.Close()
	id, _ := age.GenerateX25519Identity()
	s, err := New(Config{Name: "home", DB: "postgres://box@db/postgres", VaultURL: srv.URL, Recipients: []string{id.Recipient().String()}, Signer: testSign}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.setError(s.call(context.Background(), "POST", "/v1/wal/record", nil, []byte("record"), nil))
	if st := s.Status(); !st.VaultFull || !strings.Contains(st.LastError, words) {
		t.Errorf("got full %v, error %q; want full, saying %q", st.VaultFull, st.LastError, words)
	}
	s.setError(nil)
	if st := s.Status(); st.VaultFull {
		t.Errorf("got full after the vault took WAL again; want not full")
	}
}
