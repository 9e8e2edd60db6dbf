package offsite_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// A replacement box (a new tailnet node, the practice's signing key
// restored from its key backup) set to continue the old box's namespace
// goes on writing the old box's WAL in the vault: the vault holds one
// namespace, with the WAL of both boxes, and the old node may no longer
// write it.
func TestReplacementBoxContinuesTheNamespaceWithItsKey(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	c.MustExec(t, "CREATE TABLE marks (id int PRIMARY KEY)")
	tn := tailnettest.New(t)
	vnode := tn.Node(t, "vault", "tag:vault")
	oldBox := tn.Node(t, "box", "tag:clinicbox")
	newBox := tn.Node(t, "box-new", "tag:clinicbox")
	support := tn.Node(t, "support", "tag:support")
	startVault(t, vnode, vault.Config{Dir: testenv.SharedDir(t)})
	id, _ := age.GenerateX25519Identity()

	// ship runs a box on node until the WAL up to the mark is durable in
	// the vault, then stops it.
	ship := func(node *tailnet.Node, continueNS string, mark int) {
		t.Helper()
		c.MustExec(t, "INSERT INTO marks VALUES ("+strconv.Itoa(mark)+")")
		lsn, err := c.CurrentLSN(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		sh := runShipper(t, ctx, offsite.Config{DB: c.URL(), Recipients: []string{id.Recipient().String()},
			Client: node.HTTPClient(), ContinueNamespace: continueNS})
		err = sh.waitDurable(ctx, lsn, 2*time.Minute)
		sh.stop()
		if err != nil {
			t.Fatalf("WAL up to %s not durable at the vault: %v (status %+v)", lsn, err, sh.Status())
		}
	}
	status := func() wire.Status {
		t.Helper()
		var st wire.Status
		if code := getJSON(t, support.HTTPClient(), "http://vault:8443/v1/status", &st); code != 200 {
			t.Fatalf("status: got %d", code)
		}
		return st
	}

	ship(oldBox, "", 1)
	st := status()
	if len(st.Boxes) != 1 {
		t.Fatalf("the vault holds %d namespaces; want the old box's", len(st.Boxes))
	}
	ns, before := st.Boxes[0].Namespace, st.Boxes[0].Durable

	ship(newBox, ns, 2)
	st = status()
	if len(st.Boxes) != 1 || st.Boxes[0].Namespace != ns || st.Boxes[0].Durable <= before {
		t.Errorf("after the replacement box ran the vault holds %+v; want the one namespace %s, its WAL past %s", st.Boxes, ns, before)
	}
	var who struct{ Namespace string }
	if code := getJSON(t, newBox.HTTPClient(), "http://vault:8443/v1/whoami", &who); code != 200 || who.Namespace != ns {
		t.Errorf("the replacement box writes %q (%d); want %s", who.Namespace, code, ns)
	}
	if code := getJSON(t, oldBox.HTTPClient(), "http://vault:8443/v1/wal", nil); code != http.StatusForbidden {
		t.Errorf("the old node reads its WAL position: got %d; want 403", code)
	}
}
