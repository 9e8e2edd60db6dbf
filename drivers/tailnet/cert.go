package tailnet

import (
	"context"
	"crypto/tls"
	"fmt"
)

// TLSConfig returns a TLS configuration serving the tailnet's own
// certificate for this node (issued through the coordination server by
// Let's Encrypt), and the node's name on it, once one certificate has
// been fetched; ok is false when the tailnet offers none: HTTPS is not
// enabled in the tailnet, MagicDNS is off, or the coordination server has
// no certificate service (a self-hosted one, or a test's). Call it after
// Up. The first certificate can take a minute to arrive.
func (n *Node) TLSConfig(ctx context.Context) (cfg *tls.Config, name string, ok bool, err error) {
	lc, err := n.srv.LocalClient()
	if err != nil {
		return nil, "", false, fmt.Errorf("tailnet: tls: %w", err)
	}
	st, err := lc.StatusWithoutPeers(ctx)
	if err != nil {
		return nil, "", false, fmt.Errorf("tailnet: tls: %w", err)
	}
	if len(st.CertDomains) == 0 || st.CurrentTailnet == nil || !st.CurrentTailnet.MagicDNSEnabled {
		return nil, "", false, nil
	}
	name = st.CertDomains[0]
	if _, _, err := lc.CertPair(ctx, name); err != nil {
		return nil, name, false, fmt.Errorf("tailnet: certificate for %s: %w", name, err)
	}
	return &tls.Config{GetCertificate: lc.GetCertificate, MinVersion: tls.VersionTLS12}, name, true, nil
}
