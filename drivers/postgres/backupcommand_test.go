package postgres

import (
	"strings"
	"testing"
)

// Asked for progress, the server first sizes every file of the data
// directory; a backup nobody watches must not ask.
func TestBackupCommandAsksProgressOnlyWhenWatched(t *testing.T) {
	for _, tc := range []struct {
		opt  BackupOptions
		want bool
	}{
		{BackupOptions{}, false},
		{BackupOptions{ServerZstdLevel: 1}, false},
		{BackupOptions{Progress: func(done, total int64) {}}, true},
	} {
		cmd := backupCommand(tc.opt)
		if got := strings.Contains(cmd, "PROGRESS"); got != tc.want {
			t.Errorf("%s: asks for progress %v; want %v", cmd, got, tc.want)
		}
	}
}
