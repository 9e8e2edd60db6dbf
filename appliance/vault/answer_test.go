package vault

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// The vault's answers carry no Date: every WAL record is answered, and
// the box never reads it.
func TestAnswerHasNoDate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, wire.Position{Exists: true, Timeline: 1})
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d, ok := resp.Header["Date"]; ok {
		t.Errorf("the answer carries Date: %q; want none", d)
	}
}
