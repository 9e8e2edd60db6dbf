package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pglogrepl"
)

// SlotInfo is what READ_REPLICATION_SLOT tells about a physical slot.
type SlotInfo struct {
	Exists     bool
	RestartLSN LSN    // 0 when the slot has not reserved WAL
	Timeline   uint32 // timeline of RestartLSN
}

// ValidSlotName reports whether name can be a replication slot name: 1 to
// 63 of a-z, 0-9 and _. (The regular expression ^[a-z0-9_]{1,63}$ said the
// same, but compiling its 63 repetitions when the program started cost every
// run of clinicctl 700 allocations.)
func ValidSlotName(name string) bool {
	if len(name) < 1 || len(name) > 63 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ReadSlot reads a physical slot's restart position (PostgreSQL 15+).
func (c *Conn) ReadSlot(ctx context.Context, name string) (SlotInfo, error) {
	if !ValidSlotName(name) {
		return SlotInfo{}, &Error{Problem: fmt.Sprintf("%q is not a valid slot name", name), Fix: "use lower-case letters, digits and underscores"}
	}
	res, err := c.pg.Exec(ctx, "READ_REPLICATION_SLOT "+name).ReadAll()
	if err != nil {
		return SlotInfo{}, explainQuery(c.user, "READ_REPLICATION_SLOT", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) < 3 {
		return SlotInfo{}, fmt.Errorf("postgres: READ_REPLICATION_SLOT %s: unexpected result", name)
	}
	row := res[0].Rows[0]
	if row[0] == nil { // slot_type is NULL when the slot does not exist
		return SlotInfo{}, nil
	}
	if string(row[0]) != "physical" {
		return SlotInfo{}, &Error{Problem: fmt.Sprintf("slot %q is a %s slot", name, row[0]), Fix: "choose another slot name for clinicbox"}
	}
	si := SlotInfo{Exists: true}
	if row[1] != nil {
		if si.RestartLSN, err = pglogrepl.ParseLSN(string(row[1])); err != nil {
			return si, err
		}
	}
	if row[2] != nil {
		tli, _ := strconv.ParseUint(string(row[2]), 10, 32)
		si.Timeline = uint32(tli)
	}
	return si, nil
}

// CreateSlot creates a physical slot that reserves WAL at once. A temporary
// slot lives only as long as this connection.
func (c *Conn) CreateSlot(ctx context.Context, name string, temporary bool) error {
	if !ValidSlotName(name) {
		return &Error{Problem: fmt.Sprintf("%q is not a valid slot name", name), Fix: "use lower-case letters, digits and underscores"}
	}
	tmp := ""
	if temporary {
		tmp = " TEMPORARY"
	}
	_, err := c.pg.Exec(ctx, "CREATE_REPLICATION_SLOT "+name+tmp+" PHYSICAL RESERVE_WAL").ReadAll()
	if err != nil {
		return explainQuery(c.user, "CREATE_REPLICATION_SLOT", err)
	}
	return nil
}

// DropSlot drops a physical slot.
func (c *Conn) DropSlot(ctx context.Context, name string) error {
	if !ValidSlotName(name) {
		return fmt.Errorf("postgres: invalid slot name %q", name)
	}
	_, err := c.pg.Exec(ctx, "DROP_REPLICATION_SLOT "+name+" WAIT").ReadAll()
	if err != nil {
		return explainQuery(c.user, "DROP_REPLICATION_SLOT", err)
	}
	return nil
}

// TimelineHistory fetches the history file of timeline tli.
func (c *Conn) TimelineHistory(ctx context.Context, tli uint32) (name string, content []byte, err error) {
	h, err := pglogrepl.TimelineHistory(ctx, c.pg, int32(tli))
	if err != nil {
		return "", nil, explainQuery(c.user, "TIMELINE_HISTORY", err)
	}
	return h.FileName, h.Content, nil
}
