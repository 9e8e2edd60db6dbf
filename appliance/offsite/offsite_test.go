package offsite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// countingTransport counts the bytes of backup file chunks sent and can be
// set to break the connection after a number of them, as a dropped link
// would mid-file.
type countingTransport struct {
	next http.RoundTripper

	mu       sync.Mutex
	sent     int64 // bytes of backup file chunks the vault acknowledged
	failIn   int   // fail the failIn-th next chunk; 0 means never
	requests int
}

var errLinkDown = errors.New("link down (test)")

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	chunk := r.Method == "PUT" && strings.Contains(r.URL.Path, "/files/")
	if chunk {
		ct.mu.Lock()
		ct.requests++
		fail := ct.failIn > 0 && ct.requests == ct.failIn
		ct.mu.Unlock()
		if fail {
			return nil, errLinkDown
		}
	}
	resp, err := ct.next.RoundTrip(r)
	if err == nil && chunk && resp.StatusCode == http.StatusOK {
		ct.mu.Lock()
		ct.sent += r.ContentLength
		ct.mu.Unlock()
	}
	return resp, err
}

func (ct *countingTransport) arm(failIn int) (sent int64) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.failIn, ct.requests = failIn, 0
	sent, ct.sent = ct.sent, 0
	return sent
}

// serverUser is the user restored servers run as when the test runs as root.
func serverUser(t *testing.T) (int, int) {
	if os.Geteuid() != 0 {
		return -1, -1
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

func getJSON(t *testing.T, c *http.Client, url string, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// The whole offsite path in one process: a clinic database under load, a
// box, a vault, a support peer and strangers on an in-process tailnet.
func TestOffsite(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.ClinicInit(ctx, 100); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLE marks (id int PRIMARY KEY)")

	tn := tailnettest.New(t)
	vnode := tn.Node(t, "vault", "tag:vault")
	boxNode := tn.Node(t, "box", "tag:clinicbox")
	support := tn.Node(t, "support", "tag:support")
	stranger := tn.Node(t, "stranger")
	other := tn.Node(t, "other", "tag:other")
	restorer := tn.Node(t, "restorer", "tag:clinicrestore")

	vcfg := vault.Config{Dir: testenv.SharedDir(t)}
	vs := startVault(t, vnode, vcfg)

	id, _ := age.GenerateX25519Identity()
	ids := []age.Identity{id}
	recips := []string{id.Recipient().String()}
	idFile := filepath.Join(testenv.SharedDir(t), "key")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	uid, gid := serverUser(t)
	if uid >= 0 {
		os.Chown(idFile, uid, gid)
	}

	// The drive's repository holds the base backup the box uploads.
	drive := filepath.Join(testenv.SharedDir(t), "drive")
	bk, err := backup.Take(ctx, backup.Options{DB: c.URL(), Repo: drive, Recipients: recips, Signer: testSigner})
	if err != nil {
		t.Fatal(err)
	}

	const capBits = 4 << 20 // 4 Mbit/s: 512 KB/s in 512 KB chunks
	ct := &countingTransport{next: boxNode.HTTPClient().Transport}
	sh := runShipper(t, ctx, offsite.Config{DB: c.URL(), Recipients: recips, Client: &http.Client{Transport: ct},
		Bandwidth: offsite.OfficeHours(0, 24, capBits, capBits)})
	t.Cleanup(sh.stop)

	wctx, stopWork := context.WithCancel(ctx)
	workDone := make(chan error, 1)
	go func() { workDone <- c.ClinicWorkload(wctx, 50, 100) }()
	t.Cleanup(func() { stopWork(); <-workDone })

	waitDurable := func(t *testing.T, lsn postgres.LSN) {
		t.Helper()
		if err := sh.waitDurable(ctx, lsn, 2*time.Minute); err != nil {
			t.Fatalf("WAL up to %s not durable at the vault: %v (status %+v)", lsn, err, sh.Status())
		}
	}
	lsnNow := func(t *testing.T) postgres.LSN {
		l, err := c.CurrentLSN(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("WAL reaches the vault under load", func(t *testing.T) {
		waitDurable(t, lsnNow(t))
		st := sh.Status()
		if !st.Connected || st.Slot != "clinicbox_offsite_vault1" || st.WireBytes == 0 || st.RawBytes == 0 {
			t.Errorf("got status %+v; want connected through slot clinicbox_offsite_vault1 with WAL sent", st)
		}
	})

	t.Run("an interrupted upload resumes mid-file", func(t *testing.T) {
		var total int64
		for _, f := range bk.Files {
			total += f.Size
		}
		ct.arm(2) // the second chunk never arrives
		if err := sh.UploadBackup(ctx, drive, bk.ID); !errors.Is(err, errLinkDown) {
			t.Fatalf("got %v; want the upload to fail with the link", err)
		}
		var p wire.BackupProgress
		if code := getJSON(t, boxNode.HTTPClient(), "http://vault:8443/v1/backups/"+bk.ID, &p); code != 200 {
			t.Fatalf("progress: got status %d", code)
		}
		var held int64
		for _, n := range p.Files {
			held += n
		}
		if p.Complete || held == 0 {
			t.Fatalf("after the break the vault holds %+v; want part of the backup", p)
		}
		ct.arm(0)
		start := time.Now()
		if err := sh.UploadBackup(ctx, drive, bk.ID); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		resent := ct.arm(0)
		if code := getJSON(t, boxNode.HTTPClient(), "http://vault:8443/v1/backups/"+bk.ID, &p); code != 200 || !p.Complete {
			t.Fatalf("got %+v (status %d); want the backup complete", p, code)
		}
		if resent > total+4096-held {
			t.Errorf("the resumed upload sent %d bytes; want at most %d (the vault already held %d)", resent, total+4096-held, held)
		}
		// The token bucket starts full with one chunk; everything after it
		// is paced at the cap, so this bound cannot flake.
		if min := time.Duration(float64(max(resent-capBits/8, 0)) / (capBits / 8) * float64(time.Second)); elapsed < min {
			t.Errorf("sent %d bytes in %s; the cap of %d bit/s allows no less than %s", resent, elapsed, capBits, min)
		}
		if st := sh.Status(); st.LastBaseBackup != bk.ID {
			t.Errorf("got last base backup %q; want %q", st.LastBaseBackup, bk.ID)
		}
	})

	outer := t
	t.Run("the vault restarts and the box catches up without a gap", func(t *testing.T) {
		vs.stop()
		c.MustExec(t, "INSERT INTO marks VALUES (100)")
		lsn := lsnNow(t)
		vs = startVault(outer, vnode, vcfg)
		waitDurable(t, lsn)
	})

	var ns string
	t.Run("support reads status; strangers are refused and audited", func(t *testing.T) {
		var st wire.Status
		if code := getJSON(t, support.HTTPClient(), "http://vault:8443/v1/status", &st); code != 200 || len(st.Boxes) != 1 {
			t.Fatalf("support: got %d %+v; want the status of one box", code, st)
		}
		ns = st.Boxes[0].Namespace
		for _, tc := range []struct {
			name   string
			client *http.Client
			url    string
			want   int
		}{
			{"support may not read data", support.HTTPClient(), "http://vault:8443/v1/files?box=" + ns, 403},
			{"untagged peer", stranger.HTTPClient(), "http://vault:8443/v1/status", 403},
			{"wrongly tagged peer", other.HTTPClient(), "http://vault:8443/v1/files?box=" + ns, 403},
			{"untagged peer uploads", stranger.HTTPClient(), "http://vault:8443/v1/wal", 403},
			{"box reads another namespace", boxNode.HTTPClient(), "http://vault:8443/v1/files?box=someone", 403},
			{"restore machine lists", restorer.HTTPClient(), "http://vault:8443/v1/files?box=" + ns, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := getJSON(t, tc.client, tc.url, nil); got != tc.want {
					t.Errorf("got %d; want %d", got, tc.want)
				}
			})
		}
		audit, err := os.ReadFile(filepath.Join(vcfg.Dir, "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		refused := map[string]int{}
		for _, line := range bytes.Split(bytes.TrimSpace(audit), []byte("\n")) {
			var e vault.AuditEntry
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			if e.Status == 403 {
				refused[strings.SplitN(e.Node, ".", 2)[0]]++
			}
		}
		for _, who := range []string{"stranger", "other", "support", "box"} {
			if refused[who] == 0 {
				t.Errorf("no refusal of %s in the audit log (refusals: %v)", who, refused)
			}
		}
	})

	t.Run("a point-in-time restore from the vault matches the source", func(t *testing.T) {
		c.MustExec(t, "INSERT INTO marks VALUES (1)")
		var target time.Time
		conn, err := c.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&target); err != nil {
			t.Fatal(err)
		}
		c.MustExec(t, "INSERT INTO marks VALUES (2)")
		waitDurable(t, lsnNow(t))
		var want int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM encounters WHERE pg_xact_commit_timestamp(xmin) <= $1", target).Scan(&want); err != nil {
			t.Fatal(err)
		}

		r := restoreFromVault{t: t, hc: restorer.HTTPClient(), ns: ns, ids: ids, idFile: idFile, uid: uid, gid: gid}
		srv := r.start(ctx, restore.Target{Time: target})
		rconn, err := srv.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer rconn.Close(ctx)
		var marks string
		var got int64
		if err := rconn.QueryRow(ctx, "SELECT string_agg(id::text, ',' ORDER BY id) FROM marks").Scan(&marks); err != nil {
			t.Fatal(err)
		}
		if err := rconn.QueryRow(ctx, "SELECT count(*) FROM encounters").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if marks != "1,100" || got != want {
			t.Errorf("restored marks %q and %d encounters; want \"1,100\" and %d", marks, got, want)
		}
	})

	t.Run("a trusted standby replays WAL as it arrives and answers queries", func(t *testing.T) {
		sb, sbDir := startStandby(t, filepath.Join(vcfg.Dir, "boxes", ns, "repo"), idFile)
		for round := 1; round <= 2; round++ {
			c.MustExec(t, fmt.Sprintf("INSERT INTO marks VALUES (%d)", 100+round))
			want := lsnNow(t)
			waitDurable(t, want)
			conn := waitReplayed(t, sb, sbDir, want)
			var n int
			var inRecovery bool
			err := conn.QueryRow(ctx, "SELECT count(*), pg_is_in_recovery() FROM marks WHERE id = $1", 100+round).Scan(&n, &inRecovery)
			conn.Close(ctx)
			if err != nil || n != 1 || !inRecovery {
				t.Fatalf("round %d: standby has %d rows of the new mark (in recovery %v, err %v); want 1, still a standby", round, n, inRecovery, err)
			}
		}
	})
}
