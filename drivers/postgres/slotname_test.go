package postgres

import (
	"strings"
	"testing"
)

// TestValidSlotName: what PostgreSQL takes as a slot name, 1 to 63 of
// a-z, 0-9 and _, and nothing else.
func TestValidSlotName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"clinicbox", true},
		{"clinicbox_backup_42", true},
		{"_", true},
		{"0", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"Clinicbox", false},
		{"clinic-box", false},
		{"clinic box", false},
		{"slot;drop", false},
		{"é", false},
		{"slot\x00", false},
	} {
		if got := ValidSlotName(tc.name); got != tc.want {
			t.Errorf("ValidSlotName(%q) = %v; want %v", tc.name, got, tc.want)
		}
	}
}
