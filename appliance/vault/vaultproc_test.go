package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/fault"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

var (
	clinicvaultOnce sync.Once
	clinicvaultBin  string // built by the first test that needs it
	clinicvaultErr  error
)

// buildClinicvault builds cmd/clinicvault, with the race detector, once
// per test binary.
func buildClinicvault(t *testing.T) string {
	t.Helper()
	clinicvaultOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clinicvault-bin")
		if err != nil {
			clinicvaultErr = err
			return
		}
		clinicvaultBin = filepath.Join(dir, "clinicvault")
		out, err := exec.Command("go", "build", "-race", "-o", clinicvaultBin, "github.com/clinicbox/clinicbox/cmd/clinicvault").CombinedOutput()
		if err != nil {
			clinicvaultErr = fmt.Errorf("build clinicvault: %v\n%s", err, out)
		}
	})
	if clinicvaultErr != nil {
		t.Fatal(clinicvaultErr)
	}
	return clinicvaultBin
}

// vaultProc is cmd/clinicvault run as a child on the test's tailnet, one
// of several nodes sharing a bucket, killed the way a crash kills it.
type vaultProc struct {
	t    *testing.T
	name string // its tailnet hostname and node name
	dir  string
	cfg  string // its settings file
	p    *fault.Process
}

// startVaultProc writes the node's settings (offloading every second,
// leases of 10 s) and starts it.
func startVaultProc(t *testing.T, name, controlURL string, s3 store.S3Config) *vaultProc {
	t.Helper()
	v := &vaultProc{t: t, name: name, dir: t.TempDir()}
	settings, _ := json.Marshal(map[string]any{"dir": filepath.Join(v.dir, "vault"), "hostname": name, "control_url": controlURL,
		"s3": s3, "node": name, "lease_seconds": 10, "offload_seconds": 1})
	v.cfg = filepath.Join(v.dir, "clinicvault.json")
	if err := os.WriteFile(v.cfg, settings, 0o600); err != nil {
		t.Fatal(err)
	}
	v.start()
	t.Cleanup(func() {
		v.p.Kill()
		if t.Failed() {
			t.Logf("%s's log:\n%s", v.name, v.p.Output())
		}
	})
	return v
}

// start runs the node (again) on its directory.
func (v *vaultProc) start() {
	v.t.Helper()
	p, err := fault.StartCmd(v.name, exec.Command(buildClinicvault(v.t), "-config", v.cfg))
	if err != nil {
		v.t.Fatal(err)
	}
	v.p = p
}

// kill SIGKILLs the node: nothing is closed or flushed.
func (v *vaultProc) kill() {
	v.t.Helper()
	if !v.p.Kill() {
		v.t.Fatalf("%s had ended before the kill: %v\n%s", v.name, v.p.Err(), v.p.Output())
	}
}

// remote is a vault process as a box on the tailnet reaches it; status 0
// means the request got no answer.
type remote struct {
	t      *testing.T
	box    *tailnet.Node
	url    string
	sealer *archive.WALSealer
	last   string // the last failure logged
}

func (r *remote) do(_, method, target string, body []byte, out any) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.url+target, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.box.HTTPClient().Do(req)
	if err != nil {
		r.note(fmt.Sprintf("%s %s%s: %v", method, r.url, target, err))
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if out != nil {
		json.Unmarshal(data, out)
	}
	if resp.StatusCode != 200 {
		r.note(fmt.Sprintf("%s %s%s: %d %s", method, r.url, target, resp.StatusCode, bytes.TrimSpace(data)))
	}
	return resp.StatusCode
}

// note logs a failed request unless it failed just so before (a poll
// repeats the same failure many times).
func (r *remote) note(msg string) {
	if msg != r.last {
		r.last = msg
		r.t.Log(msg)
	}
}

func (r *remote) record(peer string, seg uint64, off int, data []byte) (int, wire.Problem) {
	return sealedRecord(r.t, r, r.sealer, peer, seg, off, data)
}

// sealedRecord seals data as the box does and sends it to node.
func sealedRecord(t *testing.T, node walNode, s *archive.WALSealer, peer string, seg uint64, off int, data []byte) (int, wire.Problem) {
	t.Helper()
	rec, err := s.Record(1, seg, off, data)
	if err != nil {
		t.Fatal(err)
	}
	var p wire.Problem
	code := node.do(peer, "POST", fmt.Sprintf("/v1/wal/record?tli=1&seg=%d&offset=%d&length=%d", seg, off, len(data)), rec, &p)
	return code, p
}

// until polls cond until it holds, failing t with what after the test's
// patience; each poll is a round trip to a vault process or the bucket.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience(t))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not synchronizing
	}
}
