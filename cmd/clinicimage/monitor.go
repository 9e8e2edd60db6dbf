package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"
)

// monitor is a client of qemu's QMP monitor on a unix socket. Human
// monitor commands (drive_add, device_add, info usb) go through QMP's
// human-monitor-command.
type monitor struct {
	mu   sync.Mutex // serializes commands; guards the fields below
	conn net.Conn
	r    *bufio.Reader
}

// dialMonitor connects to the QMP socket and leaves capabilities
// negotiation mode.
func dialMonitor(ctx context.Context, path string) (*monitor, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial %s: %w", path, err)
	}
	m := &monitor{conn: conn, r: bufio.NewReader(conn)}
	if err := m.readGreeting(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := m.Execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

func (m *monitor) readGreeting(ctx context.Context) error {
	m.setDeadline(ctx)
	line, err := m.r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("qmp: read greeting: %w", err)
	}
	var g struct{ QMP json.RawMessage }
	if err := json.Unmarshal(line, &g); err != nil || g.QMP == nil {
		return fmt.Errorf("qmp: unexpected greeting %q", line)
	}
	return nil
}

func (m *monitor) setDeadline(ctx context.Context) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Minute)
	}
	m.conn.SetDeadline(dl)
}

// Execute runs a QMP command and returns its "return" value. Events that
// arrive meanwhile are skipped.
func (m *monitor) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setDeadline(ctx)
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := m.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", command, err)
	}
	for {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp: %s: %w", command, err)
		}
		var resp struct {
			Return json.RawMessage
			Error  *struct{ Class, Desc string }
			Event  string
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp: %s: %w", command, err)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("qmp: %s: %s: %s", command, resp.Error.Class, resp.Error.Desc)
		}
		return resp.Return, nil
	}
}

// Human runs a human monitor command and returns its output. Commands
// such as drive_add report failure only in their output.
func (m *monitor) Human(ctx context.Context, line string) (string, error) {
	ret, err := m.Execute(ctx, "human-monitor-command", map[string]string{"command-line": line})
	if err != nil {
		return "", err
	}
	var out string
	if err := json.Unmarshal(ret, &out); err != nil {
		return "", fmt.Errorf("qmp: %s: %w", line, err)
	}
	return out, nil
}

// Close closes the connection; qemu keeps running.
func (m *monitor) Close() error { return m.conn.Close() }
