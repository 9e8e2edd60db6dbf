package tailnet_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"testing"
	"time"

	"tailscale.com/net/netns"

	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// The memory a tailnet node costs is measured in a process of its own:
// this test binary started again with memNodeEnv set runs one node (the
// box's settings) and nothing else, and reports its memory once the node
// is up and idle, and again after it sent memNodeSend bytes to a peer.
const (
	memNodeEnv  = "CLINICBOX_TAILNET_MEMNODE"
	memNodeSend = 32 << 20
)

func TestMain(m *testing.M) {
	if url := os.Getenv(memNodeEnv); url != "" {
		os.Exit(memNodeMain(url))
	}
	os.Exit(m.Run())
}

// nodeMemory is what the node's process holds, in KiB (the kernel's
// resident set, its peak, anonymous and file-backed parts) and MiB (the Go
// heap's objects, the collector's live heap and goal).
type nodeMemory struct {
	HWM, RSS, Anon, File int64
	HeapObjects, Live    float64
	Goal                 float64
}

func (m nodeMemory) String() string {
	return fmt.Sprintf("peak %.1f MiB, resident %.1f MiB (anonymous %.1f, file %.1f); Go heap objects %.1f MiB, live %.1f, goal %.1f",
		float64(m.HWM)/1024, float64(m.RSS)/1024, float64(m.Anon)/1024, float64(m.File)/1024, m.HeapObjects, m.Live, m.Goal)
}

func readNodeMemory() nodeMemory {
	m := nodeMemory{HWM: testenv.StatusKB("VmHWM"), RSS: testenv.StatusKB("VmRSS"), Anon: testenv.StatusKB("RssAnon"), File: testenv.StatusKB("RssFile")}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	m.HeapObjects, m.Live, m.Goal = mib(s[0]), mib(s[1]), mib(s[2])
	return m
}

func mib(s metrics.Sample) float64 { return float64(s.Value.Uint64()) / (1 << 20) }

// memNodeMain is the node's process: it joins the tailnet at controlURL
// as the box does, prints its memory, sends memNodeSend bytes to
// vault:9000, and prints its memory again.
func memNodeMain(controlURL string) int {
	netns.SetEnabled(false) // as tailnettest: no socket marks on loopback
	dir, _ := os.MkdirTemp("", "clinicbox-memnode-")
	defer os.RemoveAll(dir)
	n, err := tailnet.New(tailnet.Config{Memory: true, Dir: dir, Hostname: "box", Tags: []string{"tag:clinicbox"}, Ephemeral: true,
		ControlURL: controlURL, TCPBuffer: tailnet.LowMemoryTCPBuffer}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := n.Up(ctx); err == nil {
		err = n.Ready(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := json.NewEncoder(os.Stdout)
	out.Encode(readNodeMemory())
	c, err := n.Dial(ctx, "tcp", "vault:9000")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buf := make([]byte, 64<<10)
	for sent := 0; sent < memNodeSend; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	// Everything is sent once the vault, having read it all, closes.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, c)
	c.Close()
	out.Encode(readNodeMemory())
	return 0
}

// TestNodeMemory measures a node with the box's settings alone in a
// process, the tailnet's share of the box's memory: idle, and after
// sending 32 MiB as fast as the tailnet takes it. Idle, wireguard-go's
// fixed buffers (128 of 64 KiB for each of magicsock's three receive
// routines and the TUN reader: 32 MiB) are Go heap but mostly untouched;
// sending at speed touches them, and they become resident. The ceiling
// is loose: it catches a node that grows without bound, not a few MiB.
func TestNodeMemory(t *testing.T) {
	tn := tailnettest.New(t)
	vault := tn.Node(t, "vault", "tag:vault")
	ln, err := vault.Listen(":9000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), memNodeEnv+"="+tn.ControlURL)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var idle, sent nodeMemory
	dec := json.NewDecoder(bufio.NewReader(stdout))
	if err := dec.Decode(&idle); err != nil {
		t.Fatalf("the node's process: %v", err)
	}
	t.Logf("idle: %v", idle)
	if err := dec.Decode(&sent); err != nil {
		t.Fatalf("the node's process: %v", err)
	}
	t.Logf("after sending %d MiB: %v", memNodeSend>>20, sent)
	if n := <-got; n != memNodeSend {
		t.Fatalf("the vault received %d bytes; want %d", n, memNodeSend)
	}
	// The Go heap, not the resident set: the race detector's shadow
	// memory triples the latter.
	if sent.HeapObjects-idle.HeapObjects > memNodeGrowth {
		t.Fatalf("sending took the node's Go heap from %.1f MiB to %.1f MiB; want at most %d MiB more", idle.HeapObjects, sent.HeapObjects, memNodeGrowth)
	}
}

// memNodeGrowth bounds, in MiB, what sending adds to the node's Go heap:
// its packets in flight and the collector's headroom.
const memNodeGrowth = 64
