package vault

import (
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io"
	"net/http/httptest"
	"testing"
	"time"
)

// A box killed, or cut off, in the middle of an upload leaves the vault
// waiting for the rest of that request's body. The box's next requests
// (the restarted service's, which asks where the upload stands before it
// goes on) must still be answered.
func TestStalledUploadDoesNotBlockTheBox(t *testing.T) {
	for _, tc := range []struct{ name, target string }{
		{"backup chunk", "/v1/backups/20261122T101500Z/files/base.tar.zst.age?offset=0"},
		{"WAL record", "/v1/wal/record?tli=1&seg=1&offset=0&length=4000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.createRepo("box:1")
			data := walBytes(5000, 4)
			f.startBackup(data)
			body, send := io.Pipe()
			defer send.Close()
			r := httptest.NewRequest("POST", tc.target, body)
			if tc.name == "backup chunk" {
				r.Method = "PUT"
			}
			r.RemoteAddr = "box:1"
			stalled := make(chan struct{})
			go func() {
				defer close(stalled)
				f.v.ServeHTTP(httptest.NewRecorder(), r)
			}()
			if _, err := send.Write(data[:100]); err != nil { // the handler is reading the body now
				t.Fatal(err)
			}
			answered := make(chan int, 1)
			go func() {
				var p wire.BackupProgress
				answered <- f.do("box:1", "GET", "/v1/backups/20261122T101500Z", nil, &p)
			}()
			select {
			case code := <-answered:
				if code != 200 {
					t.Errorf("the box's next request after a stalled one: got %d; want 200", code)
				}
			case <-time.After(30 * time.Second): // a bound, not a wait for something
				t.Fatal("the box's next request was not answered while its earlier request stalled")
			}
			send.CloseWithError(fmt.Errorf("the box died"))
			<-stalled
		})
	}
}
