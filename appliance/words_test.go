package appliance

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// TestEveryActivityHasItsCondition checks that the panel has words for
// every activity a drive can be in, and shows a condition for exactly the
// ones staff must see.
func TestEveryActivityHasItsCondition(t *testing.T) {
	shown := map[status.Activity]status.Severity{
		status.Identifying:  status.Busy,
		status.BackingUp:    status.Busy,
		status.Verifying:    status.Busy,
		status.Ejecting:     status.Busy,
		status.SafeToRemove: status.Attention,
	}
	a := &Appliance{policy: &rotation.Policy{}, cfg: Config{Now: time.Now}}
	for _, act := range status.Activities {
		b := &inBox{activity: act, dec: rotation.Decision{Drive: "drive-1", Generation: "Son"}}
		c, ok := a.activityCondition(b)
		sev, want := shown[act]
		switch {
		case c.Name == condUnknownActivity:
			t.Errorf("activity %q has no condition of its own; add it to activityCondition", act)
		case ok != want:
			t.Errorf("activity %q shown %v; want %v", act, ok, want)
		case ok && (c.Severity != sev || c.Message == ""):
			t.Errorf("activity %q: severity %s, message %q; want %s and a message", act, c.Severity, c.Message, sev)
		}
	}
	if c, ok := a.activityCondition(&inBox{activity: "defragmenting"}); !ok || c.Name != condUnknownActivity {
		t.Errorf("an activity without words shows %v %+v; want the %q condition", ok, c, condUnknownActivity)
	}
}

// oldBook is a box.json as the box wrote it while verdicts and
// verifications were plain strings.
const oldBook = `{"backups":[{"id":"20260301T020000Z","drive":"drive-1","generation":"Son","start":"2026-03-01T02:00:00Z","end":"2026-03-01T02:10:00Z","bytes":42,"verified":"ok","verified_at":"2026-03-01T02:12:00Z"},` +
	`{"id":"20260302T020000Z","drive":"drive-1","generation":"Son","start":"2026-03-02T02:00:00Z","end":"2026-03-02T02:10:00Z","bytes":42,"verified":"failed","problems":["bad"]},` +
	`{"id":"20260303T020000Z","start":"2026-03-03T02:00:00Z","end":"2026-03-03T02:10:00Z","bytes":42,"verified":""}],` +
	`"events":[],"health":{"drive-1":{"verdict":"warning","reasons":["reallocated sectors: 8"],"bad_sectors":8,"checked":"2026-03-01T08:00:00Z"}},` +
	`"health_log":{"drive-1":[{"time":"2026-02-28T08:00:00Z","verdict":"ok","bad_sectors":0},{"time":"2026-03-01T08:00:00Z","verdict":"failing","bad_sectors":8}]}}`

// TestOldBookLoads checks that a state file written before the typed
// words still loads into them and is written back in the same words.
func TestOldBookLoads(t *testing.T) {
	var b book
	if err := json.Unmarshal([]byte(oldBook), &b); err != nil {
		t.Fatalf("old box.json: %v", err)
	}
	var got []status.Verification
	for _, bk := range b.Backups {
		got = append(got, bk.Verified)
	}
	if want := []status.Verification{status.VerifiedOK, status.VerifyFailed, status.NotVerified}; !slices.Equal(got, want) {
		t.Errorf("verifications %q; want %q", got, want)
	}
	if h := b.health("drive-1"); h.Verdict != status.VerdictWarning {
		t.Errorf("health %q; want %q", h.Verdict, status.VerdictWarning)
	}
	if h := b.health("drive-2"); h.Verdict != status.VerdictUnknown {
		t.Errorf("health of a drive never checked %q; want %q", h.Verdict, status.VerdictUnknown)
	}
	if l := b.HealthLog["drive-1"]; len(l) != 2 || l[0].Verdict != status.VerdictOK || l[1].Verdict != status.VerdictFailing {
		t.Errorf("health log %+v; want ok then failing", l)
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var again, old map[string]any
	json.Unmarshal(out, &again)
	json.Unmarshal([]byte(oldBook), &old)
	for _, k := range []string{"backups", "health", "health_log"} {
		if g, w := mustJSON(t, again[k]), mustJSON(t, old[k]); g != w {
			t.Errorf("%s written back as\n%s\nwant\n%s", k, g, w)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
