package offsite_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/time/rate"
	"tailscale.com/net/netns"

	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// The week benchmark runs the box (its tailnet node, shipper and spool) in
// a process of its own, this test binary started again with
// CLINICBOX_WEEKBOX set, so that its peak RSS and CPU seconds are the
// box's alone. The test drives it over stdin and stdout, one JSON object
// a line.

const weekBoxEnv = "CLINICBOX_WEEKBOX"

// weekBoxConfig is what the box process is started with.
type weekBoxConfig struct {
	ControlURL string   `json:"control_url"`
	Dir        string   `json:"dir"`
	DB         string   `json:"db"`
	Recipients []string `json:"recipients"`
	Identity   string   `json:"identity"`
	Spool      string   `json:"spool"`
}

// weekBoxCmd is a command to the box process.
type weekBoxCmd struct {
	Op       string `json:"op"` // start, upload or stats
	LinkBps  int    `json:"link_bps,omitempty"`
	CapBits  int64  `json:"cap_bits,omitempty"`
	Drive    string `json:"drive,omitempty"`
	BackupID string `json:"id,omitempty"`
	// The night's link and cap, and how much of an upload goes over the
	// day link before the night (weekphase_test.go).
	NightLinkBps int   `json:"night_link_bps,omitempty"`
	NightCapBits int64 `json:"night_cap_bits,omitempty"`
	DayBytes     int64 `json:"day_bytes,omitempty"`
}

// weekBoxMsg is a line from the box process: an acknowledgement from the
// vault, or the answer to a command.
type weekBoxMsg struct {
	Durable postgres.LSN `json:"durable,omitempty"`
	Done    string       `json:"done,omitempty"`
	Err     string       `json:"err,omitempty"`
	Wire    int64        `json:"wire,omitempty"`
	RSSMiB  float64      `json:"rss_mib,omitempty"`
	CPUSecs float64      `json:"cpu_s,omitempty"`
	Night   time.Time    `json:"night,omitzero"` // when an upload turned to the night link
}

// weekBoxMain is the box process.
func weekBoxMain(raw string) int {
	var cfg weekBoxConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "weekbox:", err)
		return 2
	}
	watchMemory()
	b, err := newWeekBoxProc(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weekbox:", err)
		return 1
	}
	defer b.close()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var c weekBoxCmd
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			b.say(weekBoxMsg{Done: "?", Err: err.Error()})
			continue
		}
		b.say(b.do(c))
	}
	return 0
}

// weekBoxProc is the box inside the box process.
type weekBoxProc struct {
	cfg   weekBoxConfig
	node  *tailnet.Node
	id    age.Identity
	wire  atomic.Int64
	lim   *rate.Limiter
	outMu sync.Mutex
	out   *json.Encoder
	sh    *offsite.Shipper
	stop  func()
	// clock is the shipper's; dayBps and nightBps the uplink by day and
	// by night (weekphase_test.go).
	clock            movableClock
	dayBps, nightBps int
}

func newWeekBoxProc(cfg weekBoxConfig) (*weekBoxProc, error) {
	netns.SetEnabled(false) // as tailnettest: no socket marks on loopback
	id, err := age.ParseX25519Identity(cfg.Identity)
	if err != nil {
		return nil, err
	}
	node, err := tailnet.New(tailnet.Config{Memory: true, Dir: cfg.Dir, Hostname: "box-week", Tags: []string{"tag:clinicbox"}, Ephemeral: true, ControlURL: cfg.ControlURL, TCPBuffer: tailnet.LowMemoryTCPBuffer}, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := node.Up(ctx); err == nil {
		err = node.Ready(ctx)
	}
	if err != nil {
		node.Close()
		return nil, err
	}
	return &weekBoxProc{cfg: cfg, node: node, id: id, lim: rate.NewLimiter(rate.Inf, 1500), out: json.NewEncoder(os.Stdout)}, nil
}

func (b *weekBoxProc) say(m weekBoxMsg) {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	b.out.Encode(m)
}

func (b *weekBoxProc) do(c weekBoxCmd) weekBoxMsg {
	m := weekBoxMsg{Done: c.Op}
	var err error
	switch c.Op {
	case "start":
		err = b.start(c)
	case "upload":
		w0 := b.wire.Load()
		err = b.upload(c)
		m.Wire = b.wire.Load() - w0
	case "stats":
		m.RSSMiB, m.CPUSecs = peakRSSMiB(), cpuSeconds()
	default:
		err = fmt.Errorf("unknown command %q", c.Op)
	}
	if err != nil {
		m.Err = err.Error()
	}
	return m
}

// start (re)starts the shipper: the box restarting with a new cap and
// link.
func (b *weekBoxProc) start(c weekBoxCmd) error {
	if b.stop != nil {
		b.stop()
	}
	if c.LinkBps > 0 {
		b.lim.SetLimit(rate.Limit(c.LinkBps))
	}
	if b.dayBps, b.nightBps = c.LinkBps, c.NightLinkBps; c.NightLinkBps > 0 {
		b.toNight()
	}
	sh, err := offsite.New(offsite.Config{Name: "week", DB: b.cfg.DB, Recipients: b.cfg.Recipients, Signer: testSigner, VaultURL: "http://vault:8443",
		Client: clientShaped(b.node, &b.wire, b.lim), Spool: b.cfg.Spool, Identities: []age.Identity{b.id}, Bandwidth: weekBandwidth(c), Now: b.clock.Now,
		OnDurable: func(_ uint32, lsn postgres.LSN) { b.say(weekBoxMsg{Durable: lsn}) }}, nil)
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sh.Run(rctx); close(done) }()
	b.sh, b.stop = sh, func() { stop(); <-done }
	return nil
}

func (b *weekBoxProc) close() {
	if b.stop != nil {
		b.stop()
	}
	b.node.Close()
}

// cpuSeconds is the process's user and system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// weekBox is the test's side of the box process.
type weekBox struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      *json.Encoder
	answers chan weekBoxMsg
	durable atomic.Uint64
	onAck   func(uint32, postgres.LSN)
	nightAt atomic.Int64 // when the last upload turned to the night, Unix ns
}

func startWeekBox(t *testing.T, cfg weekBoxConfig, onAck func(uint32, postgres.LSN)) *weekBox {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), weekBoxEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &weekBox{t: t, cmd: cmd, in: json.NewEncoder(in), answers: make(chan weekBoxMsg, 1), onAck: onAck}
	go b.read(out)
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	return b
}

func (b *weekBox) read(r io.Reader) {
	dec := json.NewDecoder(r)
	defer close(b.answers)
	for {
		var m weekBoxMsg
		if err := dec.Decode(&m); err != nil {
			return
		}
		if !m.Night.IsZero() {
			b.nightAt.Store(m.Night.UnixNano())
			continue
		}
		if m.Done == "" {
			b.durable.Store(uint64(m.Durable))
			b.onAck(1, m.Durable)
			continue
		}
		b.answers <- m
	}
}

// do sends a command and waits for its answer.
func (b *weekBox) do(c weekBoxCmd) weekBoxMsg {
	b.t.Helper()
	if err := b.in.Encode(c); err != nil {
		b.t.Fatalf("box process: %v", err)
	}
	m, ok := <-b.answers
	if !ok {
		b.t.Fatalf("the box process ended before answering %q", c.Op)
	}
	if m.Err != "" {
		b.t.Fatalf("box process, %s: %s", c.Op, m.Err)
	}
	return m
}

func (b *weekBox) Durable() postgres.LSN { return postgres.LSN(b.durable.Load()) }
