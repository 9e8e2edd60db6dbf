package hardware

import (
	"testing"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/smart"
)

// TestVerdictForEverySMARTVerdict checks that each SMART verdict keeps its
// word in the status document and that a word the box does not know never
// reads as healthy.
func TestVerdictForEverySMARTVerdict(t *testing.T) {
	for _, v := range []smart.Verdict{smart.OK, smart.Warning, smart.Failing, smart.Unknown} {
		if got := verdict(v); string(got) != string(v) {
			t.Errorf("verdict(%q) = %q; want %q", v, got, v)
		}
	}
	if got := verdict("smoking"); got != status.VerdictUnknown {
		t.Errorf("verdict(smoking) = %q; want %q", got, status.VerdictUnknown)
	}
}
