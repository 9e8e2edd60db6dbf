package vault

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
)

// A box's custody log survives the loss of the vault node that received
// it: the node taking the box over joins the log back from the bucket, and
// the box's next batch chains on from it; a log whose parts in the bucket
// leave a gap is refused.
func TestLogsSurviveTheNode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		clk, a, b, _ := twoNodes(t, st)
		entries := custodyEntries(boxSign, 7)
		for _, n := range []int{3, 5} {
			if code, p, _ := a.postLog("custody", batchOf(boxSign, "custody", entries[:n])); code != 200 {
				t.Fatalf("custody to a: %d %s", code, p.Error)
			}
			a.offload()
		}
		clk.add(testTTL + time.Second) // a is gone
		if code, p, _ := b.postLog("custody", batchOf(boxSign, "custody", entries[5:])); code != 200 {
			t.Fatalf("custody entries 6 and 7 to b: %d %s; want 200, chained on the log read back", code, p.Error)
		}
		if got := b.storedCustody(); len(got) != 7 || got[6].Hash != entries[6].Hash {
			t.Errorf("b's custody log holds %d entries; want the 7 sent", len(got))
		}
		ctx := context.Background()
		parts, err := logParts(ctx, st, "nBOX1", "custody")
		if err != nil || len(parts) != 2 {
			t.Fatalf("the custody log's parts in the bucket: %v %d; want 2", err, len(parts))
		}
		if _, err := st.PutIfAbsent(ctx, "nBOX1/"+logPartKey("custody", parts[1].off+parts[1].Size+1), strings.NewReader("{}\n"), 3); err != nil {
			t.Fatal(err)
		}
		if _, err := logParts(ctx, st, "nBOX1", "custody"); err == nil || !strings.Contains(err.Error(), "gap or an overlap") {
			t.Errorf("a gap in the log's parts: %v; want it refused", err)
		}
	})
}
