package offsite_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

var clinicctl string // restore_command's program, built by TestMain

func TestMain(m *testing.M) {
	if cfg := os.Getenv(weekBoxEnv); cfg != "" {
		os.Exit(weekBoxMain(cfg))
	}
	dir, err := os.MkdirTemp("", "clinicbox-offsite-test-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	clinicctl = filepath.Join(dir, "clinicctl")
	if out, err := exec.Command("go", "build", "-o", clinicctl, "github.com/clinicbox/clinicbox/cmd/clinicctl").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vaultServer runs a vault on a tailnet node until stopped.
type vaultServer struct {
	v   *vault.Vault
	srv *http.Server
	ln  net.Listener
}

func startVault(t *testing.T, node *tailnet.Node, cfg vault.Config) *vaultServer {
	t.Helper()
	v, err := vault.New(cfg, node, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := node.Listen(":8443")
	if err != nil {
		t.Fatal(err)
	}
	vs := &vaultServer{v: v, srv: &http.Server{Handler: v}, ln: ln}
	go vs.srv.Serve(ln)
	t.Cleanup(vs.stop)
	return vs
}

func (vs *vaultServer) stop() {
	vs.srv.Close()
	vs.v.Close()
}
