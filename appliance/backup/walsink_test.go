package backup

import (
	"testing"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// The stream tells a sink that it is catching up only through SetBehind:
// the WAL writer has it, and --compress zstd hides it.
func TestZstdOnlyHidesCatchingUp(t *testing.T) {
	type catchUp interface{ SetBehind(bool) }
	w := new(archive.WALWriter)
	for _, tc := range []struct {
		zstdOnly, want bool
	}{{false, true}, {true, false}} {
		if _, got := walSink(w, tc.zstdOnly).(catchUp); got != tc.want {
			t.Errorf("zstdOnly %v: sink can be told to catch up: %v; want %v", tc.zstdOnly, got, tc.want)
		}
	}
}
