package archive

import (
	"testing"
	"time"
)

func TestValidID(t *testing.T) {
	made := NewID(time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC))
	for id, want := range map[string]bool{
		made:                          true,
		"20261122T101500Z":            true,
		"20261122T101500Z-2":          true,
		"20261122T101500Z-999999999":  true,
		"20261122T101500Z-1000000000": false, // a counter no box reaches
		"20261122T101500Z-":           false,
		"20261122T101500":             false,
		"20261122T101500Z/..":         false,
		"../20261122T101500Z":         false,
		"":                            false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v; want %v", id, got, want)
		}
	}
}
