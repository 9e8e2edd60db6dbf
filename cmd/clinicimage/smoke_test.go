package main

import (
	"context"
	"os"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// TestMain lets the test binary stand in for clinicimage where the smoke
// runs it: qemu starts "BINARY relay HOST:PORT" for each connection the
// guest opens to the host's database.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		os.Exit(relayMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestSmoke is make smoke: it builds the amd64 image, boots it under qemu
// and follows a drive through the box (see smokeSteps), then checks the
// drive's repository on the host with clinicctl verify and restore.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		testenv.Skip(t, "boots a virtual machine for several minutes, which -short leaves out")
	}
	_, set, err := loadProject()
	if err != nil {
		t.Fatal(err)
	}
	if err := smokePrereqs(set.Smoke); err != nil {
		testenv.Skip(t, err.Error())
	}
	w := t.Output()
	if err := runSmoke(context.Background(), "smoke", nil, w, w); err != nil {
		t.Fatal(err)
	}
}
