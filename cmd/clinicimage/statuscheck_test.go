package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// testdata/status-ejected.json is the status document a box in the smoke's
// guest gave after Son was ejected and unplugged.
func ejectedStatus(t *testing.T) *status.Status {
	t.Helper()
	b, err := os.ReadFile("testdata/status-ejected.json")
	if err != nil {
		t.Fatal(err)
	}
	var st status.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestStatusChecks(t *testing.T) {
	const son = "drive-1ff54fdc4cae"
	st := ejectedStatus(t)
	if err := ejectedSafely(st, son); err != nil {
		t.Errorf("ejectedSafely: %v", err)
	}
	if where, err := boxEmpty(st, son); err != nil || where != "in transit" {
		t.Errorf("boxEmpty = %q, %v; want in transit", where, err)
	}
	if _, err := boxEmpty(st, "drive-000000000000"); !isFailNow(err) {
		t.Errorf("boxEmpty of a drive the box never had: %v; want a failure that ends the step", err)
	}
	if err := offeredForEnrollment(st); err == nil || isFailNow(err) {
		t.Errorf("offeredForEnrollment with an empty box: %v; want an error that keeps waiting", err)
	}

	// The same removal, had the box recorded it as a pull.
	pulled := ejectedStatus(t)
	pulled.Swap.Recent[0].Decision = "pulled"
	if err := ejectedSafely(pulled, son); !isFailNow(err) {
		t.Errorf("ejectedSafely after a pull: %v; want a failure that ends the step", err)
	}
	// Still in the box and ejecting: keep waiting.
	ejecting := ejectedStatus(t)
	ejecting.InBox = &status.InBox{Drive: son, Generation: "Son", Activity: "ejecting"}
	if err := ejectedSafely(ejecting, son); err == nil || isFailNow(err) {
		t.Errorf("ejectedSafely while ejecting: %v; want an error that keeps waiting", err)
	}
	if _, err := boxEmpty(ejecting, son); err == nil {
		t.Error("boxEmpty with a drive in the box: no error")
	}
}
