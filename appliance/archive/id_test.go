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

func TestBulk(t *testing.T) {
	for p, want := range map[string]bool{
		"backups/20261204T120000Z/base.tar.zst.age":         true,
		"backups/20261204T120000Z/16385.tar.zst.age":        true,
		"backups/20261204T120000Z/base.tar.delta.age":       true,
		"backups/20261204T120000Z/blockmap.age":             true,
		"backups/20261204T120000Z/backup.json":              false,
		"backups/20261204T120000Z/backup_manifest.zst.age":  false,
		"backups/20261204T120000Z/verify.json":              false,
		"wal/00000001/000000010000000000000003.zst.age":     true,
		"wal/00000001/000000010000000000000004.partial.age": true,
		"wal/00000001/000000010000000000000004.start":       false,
		"wal/00000002/00000002.history.age":                 false,
		"wal/state.json":                                    false,
		"clinicbox-repo.json":                               false,
		"drills/20261204.json":                              false,
	} {
		if got := Bulk(p); got != want {
			t.Errorf("Bulk(%q) = %v; want %v", p, got, want)
		}
	}
}
