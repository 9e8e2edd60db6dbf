package vault

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// s3Gate stands between vault processes and the S3 server and can stop
// one chosen request halfway through its body: the server has received
// part of the write when the test kills the node that sent it, so the
// kill lands in the middle of the write, at a point the test observed.
type s3Gate struct {
	url string
	// mu guards the fields below.
	mu      sync.Mutex
	hold    func(*http.Request) bool // the request to stop; nil stops none
	held    chan string              // the stopped request's path, sent once half its body went through
	release chan struct{}            // closed to fail the stopped request's body
	seen    []string                 // method and path of every request, in order
}

func newS3Gate(t *testing.T, server string) *s3Gate {
	target, err := url.Parse("http://" + server)
	if err != nil {
		t.Fatal(err)
	}
	g := &s3Gate{held: make(chan string, 1), release: make(chan struct{})}
	// The proxy keeps the Host header: the request's signature covers it.
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.stop(r) {
			r.Body = &halfBody{r: r.Body, half: r.ContentLength / 2, g: g, path: r.URL.Path}
		}
		proxy.ServeHTTP(w, r)
	}))
	g.url = srv.URL
	t.Cleanup(func() { g.open(); srv.Close() })
	return g
}

// stop records r and reports whether it is the request to stop.
func (g *s3Gate) stop(r *http.Request) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = append(g.seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	if g.hold == nil || !g.hold(r) {
		return false
	}
	g.hold = nil
	return true
}

// arm makes the gate stop the next request hold matches.
func (g *s3Gate) arm(hold func(*http.Request) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = hold
	g.release = make(chan struct{})
}

// open fails the stopped request, if any, so that the S3 server sees its
// connection cut with half the body sent.
func (g *s3Gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// requests returns the requests seen from index from on.
func (g *s3Gate) requests(from int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen[min(from, len(g.seen)):]...)
}

// halfBody passes the first half of a body through, then tells the test
// and blocks until the gate opens.
type halfBody struct {
	r    io.ReadCloser
	half int64
	n    int64
	g    *s3Gate
	path string
	told bool
}

func (b *halfBody) Read(p []byte) (int, error) {
	if b.n >= b.half {
		if !b.told {
			b.told = true
			b.g.held <- b.path
		}
		b.g.mu.Lock()
		release := b.g.release
		b.g.mu.Unlock()
		<-release
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.r.Read(p[:min(int64(len(p)), b.half-b.n)])
	b.n += int64(n)
	return n, err
}

func (b *halfBody) Close() error { return b.r.Close() }
