// Package wire is the vault's HTTP API as both sides of the vault step of
// the data path speak it: the box's offsite shipper and the vault server
// import it, so the box links no part of the server.
package wire

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// The API is spoken over the tailnet (WireGuard authenticates
// and encrypts it; the peer's identity comes from the coordination server).
// Positions, sizes and hashes travel in clear: they are not patient data.
// Every body the vault stores is ciphertext sealed by the box.
//
//	GET  /v1/whoami                      the caller's role and namespace
//	PUT  /v1/repo                        create the caller's repository (body: archive.Info)
//	GET  /v1/wal                         where durable WAL ends (Position)
//	POST /v1/wal/begin?tli=T&lsn=L       a streaming session begins at a segment boundary
//	POST /v1/wal/record?tli=T&seg=S&offset=O&length=N   one sealed record of WAL bytes [O, O+N) of segment S
//	PUT  /v1/wal/history/{tli}           a sealed timeline history file
//	PUT  /v1/backups/{id}/meta           start a backup upload (body: backup.json)
//	GET  /v1/backups/{id}                what of a backup is durable (BackupProgress)
//	PUT  /v1/backups/{id}/files/{name}?offset=O   append a chunk of a stored backup file
//	POST /v1/backups/{id}/commit         check every file and make the backup visible
//	GET  /v1/files[?box=NS]              the repository's files (restores)
//	GET  /v1/files/{path}[?box=NS]       one file of the repository (ciphertext)
//	GET  /v1/status                      every namespace the caller may see (Status)
//	POST /v1/logs/{custody|audit}        append entries of the box's log (body: LogBatch; answer: chain.Heads)
//	GET  /v1/logs/heads[?box=NS]         the heads the vault holds (chain.Heads, as a drive's custody-head.json)
//	GET  /v1/logs/{custody|audit}[?box=NS]   the stored log, as JSON lines

// Position is where a namespace's durable WAL ends.
type Position struct {
	// Exists is false when the vault holds no WAL for the box yet.
	Exists   bool        `json:"exists"`
	Timeline uint32      `json:"timeline"`
	Durable  archive.LSN `json:"durable_lsn"`
}

// BackupProgress is what the vault holds of one backup.
type BackupProgress struct {
	ID       string `json:"id"`
	Complete bool   `json:"complete"`
	// Files maps each stored file name to its durable size; a resumed
	// upload continues there.
	Files map[string]int64 `json:"files"`
}

// FileEntry is one file of a repository, for a restore that mirrors it.
type FileEntry struct {
	Path string `json:"path"` // relative, with forward slashes
	Size int64  `json:"size"`
}

// BoxStatus is what the vault knows about one box, without the key.
type BoxStatus struct {
	Namespace    string      `json:"namespace"`
	Node         string      `json:"node"` // the box's name when it last uploaded
	SystemID     string      `json:"system_id,omitempty"`
	Timeline     uint32      `json:"timeline"`
	Durable      archive.LSN `json:"durable_lsn"`
	LastWAL      time.Time   `json:"last_wal"` // when WAL last arrived
	Backups      int         `json:"backups"`
	LatestBackup string      `json:"latest_backup,omitempty"`
	StoredBytes  int64       `json:"stored_bytes"`
	// Standby is the trusted standby's replay, when the vault runs one.
	Standby *StandbyStatus `json:"standby,omitempty"`
}

// Status is the vault's status document.
type Status struct {
	Time  time.Time   `json:"time"`
	Boxes []BoxStatus `json:"boxes"`
}

// Problem is an error answer. Code is stable for programs: "forbidden",
// "replayed" (the data is already durable), "gap" (it does not follow what
// is stored), "overlap" (it overlaps the end of what is stored),
// "bad_name" (400: a namespace, backup ID, file name, timeline or path the
// vault will not use), "malformed", "mismatch" (size or hash differ from
// backup.json), "quota" (507: the namespace is full; the vault's operator
// must raise its quota), "exists", "not_found", "internal", "stale" (409: a
// log head older than, or different from, the one the vault holds),
// "too_large" (413: a log batch over MaxLogBatch), "moved" (503: another
// vault node writes the box's namespace now; reconnect).
type Problem struct {
	Code     string    `json:"code"`
	Error    string    `json:"error"`
	Position *Position `json:"position,omitempty"`
	Size     int64     `json:"size,omitempty"` // a backup file's durable size, for "gap"
	// Head is the head of a log the vault holds, for "stale" and a log's
	// "gap": the box continues after it.
	Head *chain.Head `json:"head,omitempty"`
}

// LogBatch is what POST /v1/logs/{log} takes: entries of the box's log
// numbered above what the vault holds, oldest first, each as its line in
// the box's file, and the head the box signed at the last of them.
type LogBatch struct {
	Head    chain.Head        `json:"head"`
	Entries []json.RawMessage `json:"entries"`
}

// MaxLogBatch bounds the body of one POST /v1/logs/{log}.
const MaxLogBatch = 1 << 20

// StandbyStatus says how far the standby has replayed.
type StandbyStatus struct {
	State string `json:"state"` // "waiting for a base backup", "restoring", "replaying", "failed"
	Error string `json:"error,omitempty"`
	Port  int    `json:"port,omitempty"`
	// Backup is the base backup the standby started from.
	Backup string `json:"backup,omitempty"`
	// Replayed is the WAL position replayed; Stored is where the vault's
	// WAL ends. Behind is the difference in bytes.
	Replayed archive.LSN `json:"replayed_lsn"`
	Stored   archive.LSN `json:"stored_lsn"`
	Behind   int64       `json:"behind_bytes"`
	// LastCommit is the commit time of the last transaction replayed.
	LastCommit time.Time `json:"last_commit,omitzero"`
	Checked    time.Time `json:"checked,omitzero"`
}

// HTTPStatus is the HTTP status the vault answers a problem with.
func (p *Problem) HTTPStatus() int {
	switch p.Code {
	case "forbidden":
		return http.StatusForbidden
	case "replayed", "gap", "overlap", "exists", "stale":
		return http.StatusConflict
	case "bad_name":
		return http.StatusBadRequest
	case "malformed", "mismatch":
		return http.StatusUnprocessableEntity
	case "too_large":
		return http.StatusRequestEntityTooLarge
	case "quota":
		return http.StatusInsufficientStorage
	case "not_found":
		return http.StatusNotFound
	case "moved":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
