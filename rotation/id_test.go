package rotation

import (
	"strings"
	"testing"
)

// An identity too long or too strange for any drive is refused where the
// rotation sees it, and none of it is kept in the state (which the custody
// log and the records are written from).
func TestDecideRefusesStrangeIdentities(t *testing.T) {
	tests := []struct {
		name  string
		id    Identity
		words string
	}{
		{"2 MiB drive ID", Identity{ID: DriveID(strings.Repeat("A", 2<<20)), FSUUID: "fs-X"}, "drive ID is 2097152 bytes"},
		{"newline in drive ID", Identity{ID: "A\n{\"forged\":1}", FSUUID: "fs-X"}, `drive ID holds the character '\n'`},
		{"not text", Identity{ID: "A\xff", FSUUID: "fs-X"}, "drive ID is not text"},
		{"long serial", Identity{FSUUID: "fs-X", Serial: strings.Repeat("S", MaxSerial+1)}, "serial number is 129 bytes"},
		{"control in serial", Identity{FSUUID: "fs-X", Serial: "SN\x1b[2J"}, "serial number holds"},
		{"space in UUID", Identity{FSUUID: "fs X"}, "filesystem UUID holds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s, now := threeDrives(t)
			s, _ = p.Decide(s, Event{Kind: Remove, Safe: true}, now)
			next, d := p.Decide(s, Event{Kind: Insert, Identity: tt.id}, now)
			if d.Kind != ForeignDrive || d.Write || d.Enroll || !strings.Contains(strings.Join(d.Reasons, " "), tt.words) {
				t.Fatalf("got %s write=%v enroll=%v %q; want a foreign drive, not written, saying %q", d.Kind, d.Write, d.Enroll, d.Reasons, tt.words)
			}
			if st := next.Stranger; st == nil || st.ID != "" || st.FSUUID != "" || st.Serial != "" || st.Signature != nil {
				t.Fatalf("got stranger %.80v; want one recorded with nothing from the drive", next.Stranger)
			}
		})
	}
}

// A generation name is what the custody log shows: one with a line break
// or of a page's length is refused at enrollment.
func TestEnrollRefusesStrangeGenerations(t *testing.T) {
	for _, gen := range []string{"Son\nFather", strings.Repeat("G", MaxGeneration+1), "<script>"} {
		t.Run(gen[:min(len(gen), 10)], func(t *testing.T) {
			p, s, now := threeDrives(t)
			_, d := p.Decide(s, Event{Kind: Enroll, Identity: identity("D"), Generation: gen}, now)
			if d.Kind != Rejected || !strings.Contains(d.Reasons[0], "generation name") {
				t.Fatalf("got %s %q; want rejected over the generation name", d.Kind, d.Reasons)
			}
		})
	}
	for _, gen := range []string{"Son 2", "Père", "Drive-4"} {
		if err := CheckGeneration(gen); err != nil {
			t.Errorf("CheckGeneration(%q): got %v; want nil", gen, err)
		}
	}
}
