package web

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// A web page on another site can make its own name resolve to the box
// (DNS rebinding) and then call the box from a visitor's browser as if it
// were that site: on the tailnet the visitor's identity is the box's
// admin. The browser still names the other site in the Host header, so
// the box answers only requests that name it: its host name, NAME.local,
// its addresses, its tailnet names and addresses, and localhost.

// hostRecheck is how often, at most, a request naming a host the box did
// not list makes it list its names again (its addresses change with DHCP,
// its tailnet names once the node is up).
const hostRecheck = 10 * time.Second

// hostNames is the set of names the box answers to.
type hostNames struct {
	list func() []string // Config.Hosts; nil means loopback only
	now  func() time.Time

	mu     sync.Mutex
	known  map[string]bool
	listed time.Time // when list was last called; zero before
}

// normalHost is a Host header's or a listed name's form for comparison:
// no port, no brackets, lower case, no trailing dot, addresses as netip
// prints them.
func normalHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().WithZone("").String()
	}
	return h
}

// allowed reports whether host (a Host header) names the box.
func (h *hostNames) allowed(host string) bool {
	name := normalHost(host)
	if name == "" {
		return false
	}
	if ip, err := netip.ParseAddr(name); name == "localhost" || err == nil && ip.IsLoopback() {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.known[name] {
		return true
	}
	now := h.now()
	if h.list == nil || !h.listed.IsZero() && now.Sub(h.listed) < hostRecheck {
		return false
	}
	h.listed, h.known = now, map[string]bool{}
	for _, n := range h.list() {
		if n = normalHost(n); n != "" {
			h.known[n] = true
		}
	}
	return h.known[name]
}

// maxBody bounds every request body the pages read.
const maxBody = 64 << 10

// checkHost refuses, before anything else, a request that does not name
// the box.
func (s *Server) checkHost(m mode, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hosts.allowed(r.Host) {
			// No form or request of the pages comes near this; a
			// larger body is cut off, never buffered.
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			next.ServeHTTP(w, r)
			return
		}
		q := &request{mode: m, action: r.Method + " " + r.URL.Path, refused: true,
			why: "asked for under a name that is not the box's: " + truncate(r.Host, 100)}
		q.caller = Caller{Via: "lan", Addr: r.RemoteAddr}
		if m == tailnetMode {
			q.caller.Via = "tailnet"
		}
		defer s.record(q, http.StatusMisdirectedRequest)
		s.fail(w, r, http.StatusMisdirectedRequest, "This address is not the box's. Open the box's page by its own name or address (for example http://clinicbox.local).")
	})
}

// MachineHosts lists this machine's host name, NAME.local and the
// addresses of its network interfaces: Config.Hosts for a box without a
// tailnet.
func MachineHosts() []string {
	var out []string
	if host, err := os.Hostname(); err == nil {
		out = append(out, host, host+".local")
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// truncate shortens what a caller sent before it is recorded.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
