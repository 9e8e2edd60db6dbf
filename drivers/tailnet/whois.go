package tailnet

import (
	"context"
	"fmt"
	"strings"
)

// Peer is who is at the other end of a tailnet connection, as the
// coordination server vouches for it.
type Peer struct {
	// StableID is the node's stable identity: it survives key rotation and
	// address changes, so the vault keys a box's namespace by it.
	StableID string
	// Node is the node's name (its MagicDNS name without the trailing dot).
	Node string
	// Login is the owning user's login name; empty for tagged nodes, which
	// belong to no user.
	Login string
	// Tags are the node's ACL tags.
	Tags []string
	// Addr is the peer's tailnet address.
	Addr string
}

// HasTag reports whether the peer carries tag.
func (p Peer) HasTag(tag string) bool {
	for _, t := range p.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// WhoIs identifies the peer at remoteAddr (a connection's RemoteAddr, or an
// http.Request's RemoteAddr).
func (n *Node) WhoIs(ctx context.Context, remoteAddr string) (Peer, error) {
	lc, err := n.srv.LocalClient()
	if err != nil {
		return Peer{}, fmt.Errorf("tailnet: whois %s: %w", remoteAddr, err)
	}
	who, err := lc.WhoIs(ctx, remoteAddr)
	if err != nil {
		return Peer{}, fmt.Errorf("tailnet: whois %s: %w", remoteAddr, err)
	}
	if who.Node == nil {
		return Peer{}, fmt.Errorf("tailnet: whois %s: no node", remoteAddr)
	}
	p := Peer{
		StableID: string(who.Node.StableID),
		Node:     strings.TrimSuffix(who.Node.Name, "."),
		Tags:     append([]string(nil), who.Node.Tags...),
		Addr:     remoteAddr,
	}
	if who.UserProfile != nil && len(p.Tags) == 0 {
		p.Login = who.UserProfile.LoginName
	}
	return p, nil
}
