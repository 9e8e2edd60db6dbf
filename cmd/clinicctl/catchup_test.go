package main

import (
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// The catching-up bar counts from the first flush toward --endpos or the
// server's moving WAL end, is never drawn for a stream that starts caught
// up, and ends for good once the stream has caught up.
func TestCatchUpBar(t *testing.T) {
	const mb = 1 << 20
	type flush struct {
		flushed, serverEnd postgres.LSN
		done, total        int64
		draw, finished     bool
	}
	for _, tc := range []struct {
		name    string
		end     postgres.LSN
		flushes []flush
	}{
		{"toward --endpos", 500 * mb, []flush{
			{100 * mb, 900 * mb, 0, 400 * mb, true, false},
			{300 * mb, 900 * mb, 200 * mb, 400 * mb, true, false},
			{500 * mb, 900 * mb, 400 * mb, 400 * mb, true, true},
			{600 * mb, 900 * mb, 0, 0, false, true},
		}},
		{"following a server that keeps writing", 0, []flush{
			{100 * mb, 200 * mb, 0, 100 * mb, true, false},
			{150 * mb, 260 * mb, 50 * mb, 160 * mb, true, false},
			{260 * mb, 260 * mb, 160 * mb, 160 * mb, true, true},
			{270 * mb, 400 * mb, 0, 0, false, true},
		}},
		{"caught up from the start", 0, []flush{
			{100 * mb, 100*mb + 8192, 0, 0, false, true},
			{100 * mb, 400 * mb, 0, 0, false, true},
		}},
		{"--endpos within a segment of the start", 100*mb + 4*mb, []flush{
			{100 * mb, 900 * mb, 0, 0, false, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &catchUp{end: tc.end}
			for i, f := range tc.flushes {
				done, total, draw := c.at(f.flushed, f.serverEnd)
				if done != f.done || total != f.total || draw != f.draw || c.finished != f.finished {
					t.Errorf("flush %d at %s (server at %s): done %d of %d, draw %v, finished %v; want %d of %d, %v, %v",
						i, f.flushed, f.serverEnd, done, total, draw, c.finished, f.done, f.total, f.draw, f.finished)
				}
			}
		})
	}
}
