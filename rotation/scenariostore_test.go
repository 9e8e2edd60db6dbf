package rotation

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

// storage plays the retention commands:
//
//	backup DRIVE ID TIME SIZE ok|failed
//	wal DRIVE NAME TIME SIZE
//	plan DRIVE [wal-per-day=SIZE]
func (r *runner) storage(cmd string, args []string) error {
	id := DriveID(arg(args, 0))
	d, ok := r.state.Drive(id)
	if !ok {
		return fmt.Errorf("no drive %q", id)
	}
	sp := r.space[id]
	if sp == nil {
		sp = &Space{}
		r.space[id] = sp
	}
	switch cmd {
	case "backup", "wal":
		if len(args) != 5 && !(cmd == "wal" && len(args) == 4) {
			return fmt.Errorf("want %s DRIVE ID TIME SIZE [ok|failed]", cmd)
		}
		at, err := time.ParseInLocation("2006-01-02T15:04", args[2], r.policy.Calendar.loc())
		if err != nil {
			return err
		}
		size, err := parseSize(args[3])
		if err != nil {
			return err
		}
		if cmd == "wal" {
			sp.WAL = append(sp.WAL, WALFile{Name: args[1], Time: at, Size: size})
		} else {
			sp.Backups = append(sp.Backups, Backup{ID: args[1], Time: at, Size: size, Restorable: args[4] == "ok"})
		}
		return nil
	}
	sp.Capacity = d.Capacity
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "wal-per-day="); ok {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			sp.WALPerDay = n
		}
	}
	plan := PlanRetention(*sp, r.now)
	r.stamp(r.now, "plan "+string(id))
	fmt.Fprintf(&r.out, "    => retention for %s on %s: need %s, free %s after deleting %d of %d items (fits: %v)\n",
		d.Generation, bytesText(d.Capacity), bytesText(plan.Need), bytesText(plan.Free), len(plan.Delete), len(plan.Keep)+len(plan.Delete), plan.Fits())
	for _, it := range plan.Delete {
		fmt.Fprintf(&r.out, "       delete %s %s (%s): %s\n", it.Kind, it.ID, bytesText(it.Size), strings.Join(it.Reasons, "; "))
	}
	for _, it := range plan.Keep {
		fmt.Fprintf(&r.out, "       keep   %s %s (%s): %s\n", it.Kind, it.ID, bytesText(it.Size), strings.Join(it.Reasons, "; "))
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(&r.out, "       ! %s\n", w)
	}
	return nil
}

// capacity returns the "cap=SIZE" argument in bytes, or 0.
func capacity(args []string) int64 {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "cap="); ok {
			n, _ := parseSize(v)
			return n
		}
	}
	return 0
}

// parseSize reads a decimal size such as "120GB" or "2TB".
func parseSize(s string) (int64, error) {
	for i, unit := range []string{"TB", "GB", "MB", "kB", "B"} {
		if v, ok := strings.CutSuffix(s, unit); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("size %q: %w", s, err)
			}
			mult := []float64{1e12, 1e9, 1e6, 1e3, 1}[i]
			return int64(n * mult), nil
		}
	}
	return 0, fmt.Errorf("size %q: want a number and TB, GB, MB, kB or B", s)
}

// summary ends the transcript with the drives and the custody log's state.
func (r *runner) summary() {
	fmt.Fprintf(&r.out, "\nDrives at the end:\n")
	for _, d := range r.state.Drives {
		line := fmt.Sprintf("  %-18s %-4s %-10s last seen %s", d.Generation, d.ID, d.Status, d.LastSeen.In(r.policy.Calendar.loc()).Format("Mon 2006-01-02 15:04 MST"))
		if d.Detail != "" {
			line += " (" + d.Detail + ")"
		}
		if d.ReplacedBy != "" {
			line += " replaced by " + string(d.ReplacedBy)
		}
		fmt.Fprintln(&r.out, line)
	}
	entries := r.log.Entries()
	verdict := "chain verifies"
	if err := Verify(entries, chain.HMACSealer([]byte("scenario key"))); err != nil {
		verdict = err.Error()
	}
	fmt.Fprintf(&r.out, "Custody log: %d entries, %s.\n", len(entries), verdict)
}
