package appliance

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
)

// The pages' actions reach the appliance, and the diagnostic bundle holds
// the box's state without the database password.
func TestWebBoxActsAndBundles(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")))
	if _, err := r.a.NewWeb(r.sim, nil); err != nil {
		t.Fatal(err)
	}
	r.enroll("blue")
	box := WebBox{r.a}
	by := web.Caller{Via: "lan", Addr: "192.0.2.7:5000"}
	if err := box.Act(context.Background(), web.Action{Name: web.ActDrill, By: by}); err == nil || !strings.Contains(err.Error(), "clinicctl drill") {
		t.Errorf("drill on the box: got %v; want a plain refusal that says where drills run", err)
	}
	if err := box.Act(context.Background(), web.Action{Name: web.ActEject, By: by}); err != nil {
		t.Fatal(err)
	}
	st := r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	if !strings.Contains(st.Events[0].Message+st.Events[1].Message, "lan:192.0.2.7") {
		t.Errorf("the eject does not name who asked: %v", st.Events[:2])
	}
	var buf bytes.Buffer
	if err := box.Bundle(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
		b, _ := io.ReadAll(tr)
		if bytes.Contains(b, []byte("clinicbox-test-pw")) || bytes.Contains(b, []byte("AGE-SECRET-KEY")) {
			t.Errorf("%s in the bundle holds a secret", h.Name)
		}
	}
	for _, want := range []string{"status.json", "settings.json", "rotation.json", "custody.jsonl"} {
		if !names[want] {
			t.Errorf("bundle lacks %s (has %v)", want, names)
		}
	}
}
