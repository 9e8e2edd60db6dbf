package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// qemu binds its monitor socket a moment before it listens on it; a dial
// in between is refused, and the VM's start must wait instead of failing.
func TestMonitorDialWaitsForListen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	refused := make(chan struct{}, 1)
	monitorRefused = func() {
		select {
		case refused <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { monitorRefused = func() {} })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vm := &VM{exited: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		m, err := vm.dialMonitor(ctx, path)
		if err == nil {
			m.Close()
		}
		done <- err
	}()
	select {
	case <-refused:
	case err := <-done:
		t.Fatalf("dial before qemu listened: got %v; want it refused and retried", err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	l, err := net.FileListener(os.NewFile(uintptr(fd), "qmp"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
	if _, err := bufio.NewReader(conn).ReadBytes('\n'); err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte(`{"return": {}}` + "\n"))
	if err := <-done; err != nil {
		t.Fatalf("dial once qemu listens: %v", err)
	}
}
