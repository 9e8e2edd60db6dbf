package archive

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// WALState is where stored WAL ends, as the writer last flushed it. It is
// advisory (renamed into place but not fsynced): other processes read it to
// wait for WAL and to show the latest restorable moment without decrypting.
type WALState struct {
	Timeline uint32    `json:"timeline"`
	Flushed  LSN       `json:"flushed_lsn"`
	Time     time.Time `json:"time"`
}

const walStateFile = "wal/state.json"

func (r *Repo) writeWALState(s WALState) {
	data, _ := json.Marshal(s)
	p := filepath.Join(r.Dir, walStateFile)
	if os.WriteFile(p+".tmp", data, filePerm) == nil {
		os.Rename(p+".tmp", p)
	}
}

// WALState returns the latest flushed WAL position; ok is false when no WAL
// was ever streamed.
func (r *Repo) WALState() (WALState, bool) {
	var s WALState
	data, err := readBounded(filepath.Join(r.Dir, walStateFile), 64<<10)
	if err != nil || json.Unmarshal(data, &s) != nil {
		return s, false
	}
	return s, true
}
