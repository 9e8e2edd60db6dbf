package usbtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/usb"
)

// Source is a usb.Source fed by the test: recorded messages, overflows, and
// the end of the stream.
type Source struct {
	ch        chan item
	done      chan struct{}
	closeOnce sync.Once
}

type item struct {
	msg []byte
	err error
}

var _ usb.Source = (*Source)(nil)

// NewSource returns an empty Source.
func NewSource() *Source { return &Source{ch: make(chan item), done: make(chan struct{})} }

// Send hands msg to the reader, waiting until it takes it or Close.
func (s *Source) Send(msg []byte) { s.put(item{msg: msg}) }

// Overflow makes the reader's next Next return usb.ErrOverflow, as when the
// kernel dropped events.
func (s *Source) Overflow() { s.put(item{err: usb.ErrOverflow}) }

// End makes the reader's next Next return io.EOF.
func (s *Source) End() { s.put(item{err: io.EOF}) }

// Replay sends every message of a recording file (see ReadRecording), then End.
func (s *Source) Replay(path string) error {
	msgs, err := ReadRecording(path)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		s.Send(m)
	}
	s.End()
	return nil
}

func (s *Source) put(it item) {
	select {
	case s.ch <- it:
	case <-s.done:
	}
}

// Next returns the next item sent, or an error wrapping os.ErrClosed after Close.
func (s *Source) Next() ([]byte, error) {
	select {
	case it := <-s.ch:
		return it.msg, it.err
	case <-s.done:
		return nil, fmt.Errorf("usbtest: source: %w", os.ErrClosed)
	}
}

// Close ends a blocked Next and any later one.
func (s *Source) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// ReadRecording reads raw kernel uevents recorded one after another, each
// (NUL-terminated, as the kernel sends it) followed by a newline.
func ReadRecording(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("usbtest: read recording: %w", err)
	}
	var msgs [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\x00\n"))
		if i < 0 {
			return nil, fmt.Errorf("usbtest: read recording %s: message without NUL and newline at its end", path)
		}
		msgs = append(msgs, b[:i+1])
		b = b[i+2:]
	}
	return msgs, nil
}

// MustRecording is ReadRecording that fails t on error.
func MustRecording(t testing.TB, path string) [][]byte {
	t.Helper()
	msgs, err := ReadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
