package rotation

import (
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/rotation/civil"
)

// setting applies a line before the first timed line, such as
// "zone America/New_York" or "holiday 2025-06-19".
func (r *runner) setting(f []string) error {
	cal := &r.policy.Calendar
	var err error
	switch f[0] {
	case "zone":
		cal.Location, err = time.LoadLocation(f[1])
	case "swap-at":
		cal.SwapAt, err = civil.ParseTimeOfDay(f[1])
	case "workdays":
		cal.Workdays = []time.Weekday{}
		for _, w := range f[1:] {
			wd, ok := weekdays[w]
			if !ok {
				return fmt.Errorf("unknown weekday %q", w)
			}
			cal.Workdays = append(cal.Workdays, wd)
		}
	case "holiday":
		var d Date
		d, err = ParseDate(f[1])
		cal.Holidays = append(cal.Holidays, d)
	case "strict":
		r.policy.Strict = true
	case "overdue-after":
		r.policy.OverdueAfter, err = strconv.Atoi(f[1])
	case "generations":
		r.policy.Generations = f[1:]
	default:
		return fmt.Errorf("unknown setting %q", f[0])
	}
	return err
}

var weekdays = map[string]time.Weekday{"Sun": time.Sunday, "Mon": time.Monday, "Tue": time.Tuesday, "Wed": time.Wednesday, "Thu": time.Thursday, "Fri": time.Friday, "Sat": time.Saturday}

// command plays one timed command.
func (r *runner) command(cmd string, args []string) error {
	args, who := takeWho(args)
	ev := Event{Who: who}
	switch cmd {
	case "check":
		r.stamp(r.now, "check")
		var dec Decision
		r.state, dec = r.policy.Evaluate(r.state, r.now)
		return r.report(dec)
	case "swap":
		return r.swap(args, who)
	case "insert":
		id, err := presented(args)
		if err != nil {
			return err
		}
		ev.Kind, ev.Identity = Insert, id
	case "remove":
		if want := DriveID(arg(args, 0)); r.state.InBox != want && !r.holdsStranger(want) {
			return fmt.Errorf("scenario says %q comes out, but the box holds %q", want, r.state.InBox)
		}
		ev.Kind, ev.Safe = Remove, arg(args, 1) != "pulled"
	case "enroll":
		ev.Kind, ev.Identity, ev.Generation, ev.Capacity = Enroll, identity(arg(args, 0)), arg(args, 1), capacity(args)
	case "replace":
		ev.Kind, ev.Drive, ev.Identity, ev.Capacity = Replace, DriveID(arg(args, 0)), identity(arg(args, 1)), capacity(args)
	case "retire", "failing", "lost":
		ev.Kind, ev.Drive, ev.Detail = map[string]EventKind{"retire": Retire, "failing": Fail, "lost": Lose}[cmd], DriveID(arg(args, 0)), strings.Join(args[min(1, len(args)):], " ")
	case "backup", "wal", "plan":
		return r.storage(cmd, args)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	r.stamp(r.now, strings.TrimSpace(strings.Join(append([]string{cmd}, args...), " ")+byWho(who)))
	return r.apply(ev, r.now)
}

// swap is the morning routine: the drive in the box is ejected and, two
// minutes later, the named drive goes in.
func (r *runner) swap(args []string, who string) error {
	if len(args) != 2 {
		return fmt.Errorf("want swap OUT IN")
	}
	if r.state.InBox != DriveID(args[0]) {
		return fmt.Errorf("scenario says %q comes out, but the box holds %q", args[0], r.state.InBox)
	}
	r.stamp(r.now, "remove "+args[0]+byWho(who))
	if err := r.apply(Event{Kind: Remove, Safe: true, Who: who}, r.now); err != nil {
		return err
	}
	r.now = r.now.Add(2 * time.Minute)
	r.stamp(r.now, "insert "+args[1]+byWho(who))
	return r.apply(Event{Kind: Insert, Identity: identity(args[1]), Who: who}, r.now)
}

// apply decides on ev, logs it in the custody log, checks that the state
// survives a JSON round trip, and writes the decision to the transcript.
func (r *runner) apply(ev Event, now time.Time) error {
	next, dec := r.policy.Decide(r.state, ev, now)
	b, err := MarshalState(next)
	if err != nil {
		return err
	}
	if r.state, err = UnmarshalState(b); err != nil {
		return err
	}
	r.log.Append(EntryFor(ev, dec, now))
	return r.report(dec)
}

// report writes a decision to the transcript.
func (r *runner) report(dec Decision) error {
	head := "=> " + string(dec.Kind)
	if dec.Generation != "" {
		head += ": " + dec.Generation
	}
	flags := []string{"write " + map[bool]string{true: "yes", false: "no"}[dec.Write]}
	if dec.Enroll {
		flags = append(flags, "offer enrollment")
	}
	fmt.Fprintf(&r.out, "    %s [%s]\n", head, strings.Join(flags, ", "))
	if len(dec.Conditions) > 0 {
		for _, c := range dec.Conditions {
			fmt.Fprintf(&r.out, "       - (%s) %s\n", c.Kind, c.Reason)
		}
		return nil
	}
	for _, reason := range dec.Reasons {
		fmt.Fprintf(&r.out, "       - %s\n", reason)
	}
	return nil
}

// presented is what a drive shows when put in: "A" is enrolled drive A as
// the box wrote it; "new D" has no identity yet; "foreign X" is signed by
// another box; "copy A" has A's identity on another filesystem.
func presented(args []string) (Identity, error) {
	switch arg(args, 0) {
	case "new":
		return Identity{FSUUID: "fs-" + arg(args, 1), Serial: "SN-" + arg(args, 1)}, nil
	case "foreign":
		id := identity(arg(args, 1))
		id.Signature = ed25519.Sign(foreignKey, []byte(id.ID))
		return id, nil
	case "copy":
		id := identity(arg(args, 1))
		id.FSUUID = "fs-copy"
		return id, nil
	case "":
		return Identity{}, fmt.Errorf("insert what?")
	}
	return identity(args[0]), nil
}

// arg returns args[i] without "key=value" words, or "".
func arg(args []string, i int) string {
	var plain []string
	for _, a := range args {
		if !strings.Contains(a, "=") {
			plain = append(plain, a)
		}
	}
	if i < len(plain) {
		return plain[i]
	}
	return ""
}

// takeWho removes "by=NAME" from args and returns NAME.
func takeWho(args []string) ([]string, string) {
	var rest []string
	who := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "by="); ok {
			who = v
		} else {
			rest = append(rest, a)
		}
	}
	return rest, who
}

func byWho(who string) string {
	if who == "" {
		return ""
	}
	return " (by " + who + ")"
}

// holdsStranger reports whether the box holds a drive outside the rotation
// that the scenario calls want: "stranger", or the ID it presented.
func (r *runner) holdsStranger(want DriveID) bool {
	st := r.state.Stranger
	return st != nil && (want == "stranger" || st.ID == want)
}
