package pgbin

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// ServerUserName is the unprivileged user PostgreSQL's programs run as when
// started by root (Debian's and Red Hat's packages create it).
const ServerUserName = "postgres"

// ServerUser returns the user and group IDs to run PostgreSQL's server
// programs as: -1, -1 when not root (they run as the caller), else those
// of ServerUserName, since initdb and postgres refuse to run as root.
func ServerUser() (uid, gid int, err error) {
	if os.Geteuid() != 0 {
		return -1, -1, nil
	}
	uid, gid, err = UserIDs(ServerUserName)
	if err != nil {
		return -1, -1, fmt.Errorf("pgbin: running as root needs the unprivileged user %s to run PostgreSQL (install postgresql, or run as another user): %w", ServerUserName, err)
	}
	return uid, gid, nil
}

// UserIDs returns a user's numeric user and group IDs.
func UserIDs(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return -1, -1, fmt.Errorf("pgbin: look up user %q: %w", name, err)
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return -1, -1, fmt.Errorf("pgbin: user %q has user ID %q, not a number: %w", name, u.Uid, err)
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return -1, -1, fmt.Errorf("pgbin: user %q has group ID %q, not a number: %w", name, u.Gid, err)
	}
	return uid, gid, nil
}
