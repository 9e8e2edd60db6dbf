package rotation

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/rotation/civil"
)

// threeDrives returns a policy and a state with Son in the box and Father
// and Grandfather away, enrolled on Monday 2 June 2025.
func threeDrives(t *testing.T) (*Policy, State, time.Time) {
	t.Helper()
	p := &Policy{Calendar: Calendar{Location: newYork(t), SwapAt: civil.TimeOfDay{Hour: 8, Minute: 0}}, Verify: testVerify}
	now := time.Date(2025, time.June, 2, 7, 0, 0, 0, p.Calendar.Location)
	var s State
	var d Decision
	steps := []Event{
		{Kind: Enroll, Identity: identity("B"), Generation: "Father"},
		{Kind: Enroll, Identity: identity("C"), Generation: "Grandfather"},
		{Kind: Insert, Identity: Identity{FSUUID: "fs-A"}},
		{Kind: Enroll, Identity: identity("A"), Generation: "Son"},
	}
	for i, ev := range steps {
		if s, d = p.Decide(s, ev, now.Add(time.Duration(i)*time.Minute)); d.Kind == Rejected {
			t.Fatalf("setup step %d: %v", i, d.Reasons)
		}
	}
	if s.InBox != "A" {
		t.Fatalf("setup: got %q in the box; want A", s.InBox)
	}
	return p, s, now.Add(time.Hour)
}

func TestDecideDoesNotModifyItsInput(t *testing.T) {
	p, s, now := threeDrives(t)
	before, _ := MarshalState(s)
	for _, ev := range []Event{{Kind: Remove, Safe: true}, {Kind: Fail, Drive: "A"}, {Kind: Lose, Drive: "B"}, {Kind: Retire, Drive: "C"}} {
		p.Decide(s, ev, now)
	}
	p.Evaluate(s, now.Add(30*24*time.Hour))
	if after, _ := MarshalState(s); !bytes.Equal(before, after) {
		t.Errorf("state changed under Decide/Evaluate:\nbefore %s\nafter  %s", before, after)
	}
}

func TestDecideRejects(t *testing.T) {
	p, s, now := threeDrives(t)
	unsigned := identity("X")
	unsigned.Signature = []byte("forged")
	tests := []struct {
		name  string
		ev    Event
		words string
	}{
		{"replace unknown drive", Event{Kind: Replace, Drive: "Q", Identity: identity("E")}, "no enrolled drive"},
		{"replace drive in box", Event{Kind: Replace, Drive: "A", Identity: identity("E")}, "eject it"},
		{"enroll taken generation", Event{Kind: Enroll, Identity: identity("E"), Generation: "Father"}, "already has a drive"},
		{"enroll without identity", Event{Kind: Enroll}, "no identity"},
		{"enroll unsigned identity", Event{Kind: Enroll, Identity: unsigned}, "not signed"},
		{"enroll twice", Event{Kind: Enroll, Identity: identity("B")}, "already enrolled"},
		{"enroll a copy", Event{Kind: Enroll, Identity: Identity{ID: "E", Signature: identity("E").Signature, FSUUID: "fs-B"}}, "copy"},
		{"lose drive in box", Event{Kind: Lose, Drive: "A"}, "not lost"},
		{"retire unknown", Event{Kind: Retire, Drive: "Q"}, "no enrolled drive"},
		{"unknown event", Event{Kind: "dance"}, "does not know"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, d := p.Decide(s, tt.ev, now)
			if d.Kind != Rejected || len(d.Reasons) != 1 || !strings.Contains(d.Reasons[0], tt.words) {
				t.Errorf("got %s %q; want rejected mentioning %q", d.Kind, d.Reasons, tt.words)
			}
			a, _ := MarshalState(s)
			b, _ := MarshalState(next)
			if !bytes.Equal(a, b) {
				t.Errorf("rejected event changed the state")
			}
		})
	}
}

func TestDecideWithoutVerifyTreatsDrivesAsForeign(t *testing.T) {
	p, s, now := threeDrives(t)
	s, _ = p.Decide(s, Event{Kind: Remove, Safe: true}, now)
	p.Verify = nil
	if _, d := p.Decide(s, Event{Kind: Insert, Identity: identity("B")}, now); d.Kind != ForeignDrive || d.Write {
		t.Errorf("got %s write=%v; want foreign drive, not written", d.Kind, d.Write)
	}
}

func TestGenerationNames(t *testing.T) {
	p, s, now := threeDrives(t)
	s, d := p.Decide(s, Event{Kind: Enroll, Identity: identity("D")}, now)
	if d.Generation != "Drive 4" {
		t.Errorf("fourth drive with the default names: got %q; want %q", d.Generation, "Drive 4")
	}
	if got := s.Drives[3].Status; got != Offsite {
		t.Errorf("drive enrolled while another is in the box: got %s; want %s", got, Offsite)
	}
}

func TestTooFewDrives(t *testing.T) {
	p := &Policy{Verify: testVerify}
	now := time.Date(2025, time.June, 2, 7, 0, 0, 0, time.UTC)
	if _, d := p.Evaluate(State{}, now); !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.HasPrefix(r, "No drive is in the rotation yet") }) {
		t.Errorf("no drives: reasons %q; want one saying no drive is in the rotation yet", d.Reasons)
	}
	s, _ := p.Decide(State{}, Event{Kind: Insert, Identity: Identity{FSUUID: "fs-A"}}, now)
	s, d := p.Decide(s, Event{Kind: Enroll, Identity: identity("A")}, now)
	if d.Kind != Enrolled || !d.Write || d.Generation != "Son" {
		t.Fatalf("got %s write=%v generation %q; want enrolled Son, written", d.Kind, d.Write, d.Generation)
	}
	if _, d = p.Evaluate(s, now); d.Kind != TooFewDrives {
		t.Errorf("one drive: got %s %q; want %s", d.Kind, d.Reasons, TooFewDrives)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name  string
		p     Policy
		field string // "" means valid
	}{
		{"defaults", Policy{Verify: testVerify}, ""},
		{"no verify", Policy{}, "verify"},
		{"one generation", Policy{Verify: testVerify, Generations: []string{"Only"}}, "generations"},
		{"repeated generation", Policy{Verify: testVerify, Generations: []string{"A", "A"}}, "generations"},
		{"negative overdue", Policy{Verify: testVerify, OverdueAfter: -1}, "overdue_after"},
		{"no workdays", Policy{Verify: testVerify, Calendar: Calendar{Workdays: []time.Weekday{}}}, "workdays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("got %v; want nil", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
				t.Errorf("got %v; want an error naming %q", err, tt.field)
			}
		})
	}
}

func TestStateRejectsUnknownFields(t *testing.T) {
	if _, err := UnmarshalState([]byte(`{"drives":[],"colour":"red"}`)); err == nil {
		t.Errorf("got nil; want an error for an unknown field")
	}
}

func TestLostDriveFound(t *testing.T) {
	p, s, now := threeDrives(t)
	s, _ = p.Decide(s, Event{Kind: Lose, Drive: "B", Who: "Kim"}, now)
	if d, _ := s.Drive("B"); d.Status != Lost {
		t.Fatalf("after reporting B lost: got %s; want %s", d.Status, Lost)
	}
	s, _ = p.Decide(s, Event{Kind: Remove, Safe: true}, now.AddDate(0, 0, 1))
	s, dec := p.Decide(s, Event{Kind: Insert, Identity: identity("B")}, now.AddDate(0, 0, 1).Add(time.Minute))
	// B has been away longest, so once found it is the right drive again.
	if dec.Kind != Accepted || !dec.Write || !strings.Contains(dec.Reasons[0], "has been found") {
		t.Errorf("lost B put back in: got %s write=%v %q; want accepted, saying it was found", dec.Kind, dec.Write, dec.Reasons)
	}
	if d, _ := s.Drive("B"); d.Status != InBox || d.Detail != "" {
		t.Errorf("found drive: got status %s detail %q; want in box, no detail", d.Status, d.Detail)
	}
}
