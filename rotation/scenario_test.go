package rotation

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/rotation/chain"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata")

// TestScenarios runs every testdata/*.scenario script and compares its
// transcript with the .golden file beside it. Refresh them with
// go test ./rotation -update, then read the diff.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.scenario"))
	if err != nil || len(files) == 0 {
		t.Fatalf("got scenarios %v (err %v); want some in testdata", files, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".scenario")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runScenario(string(src))
			if err != nil {
				t.Fatalf("scenario %s: %v", file, err)
			}
			golden := strings.TrimSuffix(file, ".scenario") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run go test ./rotation -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("transcript of %s differs from %s; got:\n%s", file, golden, diffLines(string(want), string(got)))
			}
		})
	}
}

// diffLines shows the first differing line of two transcripts.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n got: %s\nwant: %s", i+1, gl, wl)
		}
	}
	return "(same lines, different bytes)"
}

// testKey is the box key of the scenarios; foreignKey is another box's.
var (
	testKey    = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	foreignKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
)

// testVerify checks identities against testKey, as the appliance does
// against its own key.
func testVerify(id Identity) bool {
	return ed25519.Verify(testKey.Public().(ed25519.PublicKey), []byte(id.ID), id.Signature)
}

// identity returns the identity the box writes on drive id at enrollment.
func identity(id string) Identity {
	return Identity{ID: DriveID(id), Signature: ed25519.Sign(testKey, []byte(id)), FSUUID: "fs-" + id, Serial: "SN-" + id}
}

// runner plays a scenario: the state, the policy, the custody log and the
// transcript written so far.
type runner struct {
	policy  Policy
	state   State
	log     *Log
	out     bytes.Buffer
	now     time.Time
	space   map[DriveID]*Space
	started bool
}

// runScenario plays src and returns its transcript.
func runScenario(src string) ([]byte, error) {
	r := &runner{policy: Policy{Verify: testVerify}, space: map[DriveID]*Space{}}
	r.log, _ = NewLog(nil, chain.HMACSealer([]byte("scenario key")))
	for n, line := range strings.Split(src, "\n") {
		if err := r.line(line); err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
	}
	r.summary()
	return r.out.Bytes(), nil
}

// line plays one line of a scenario.
func (r *runner) line(line string) error {
	trimmed := strings.TrimSpace(line)
	switch {
	case trimmed == "":
		r.out.WriteString("\n")
		return nil
	case strings.HasPrefix(trimmed, "#"):
		fmt.Fprintln(&r.out, trimmed)
		return nil
	}
	f := strings.Fields(trimmed)
	if _, err := ParseDate(f[0]); err != nil {
		if r.started {
			return fmt.Errorf("settings must come before the first timed line")
		}
		return r.setting(f)
	}
	if !r.started {
		if err := r.policy.Validate(); err != nil {
			return err
		}
		r.started = true
	}
	if len(f) < 3 {
		return fmt.Errorf("want DATE TIME COMMAND ARGS")
	}
	now, err := time.ParseInLocation("2006-01-02 15:04", f[0]+" "+f[1], r.policy.Calendar.loc())
	if err != nil {
		return err
	}
	if now.Before(r.now) {
		return fmt.Errorf("time goes backwards from %s", r.now)
	}
	r.now = now
	return r.command(f[2], f[3:])
}

// stamp heads a transcript entry with the local time and the command.
func (r *runner) stamp(at time.Time, cmd string) {
	fmt.Fprintf(&r.out, "%s  %s\n", at.In(r.policy.Calendar.loc()).Format("Mon 2006-01-02 15:04 MST"), cmd)
}
