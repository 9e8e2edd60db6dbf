package pgbin

import (
	"os"
	"strings"
	"testing"
)

func TestUserIDs(t *testing.T) {
	if uid, gid, err := UserIDs("root"); err != nil || uid != 0 || gid != 0 {
		t.Errorf("root: got %d %d %v; want 0 0", uid, gid, err)
	}
	if _, _, err := UserIDs("no-such-user-clinicbox"); err == nil || !strings.Contains(err.Error(), "no-such-user-clinicbox") {
		t.Errorf("a missing user: got %v; want an error naming the user", err)
	}
}

// As root the server runs as the postgres user, never as root; otherwise
// as the caller.
func TestServerUser(t *testing.T) {
	uid, gid, err := ServerUser()
	if os.Geteuid() != 0 {
		if uid != -1 || gid != -1 || err != nil {
			t.Errorf("not root: got %d %d %v; want -1 -1", uid, gid, err)
		}
		return
	}
	wantUID, wantGID, lookErr := UserIDs(ServerUserName)
	switch {
	case lookErr != nil && err == nil:
		t.Errorf("root without a postgres user: got %d %d; want an error", uid, gid)
	case lookErr == nil && (err != nil || uid != wantUID || gid != wantGID || uid == 0):
		t.Errorf("root: got %d %d %v; want the postgres user's %d %d", uid, gid, err, wantUID, wantGID)
	}
}
