package tailnet

import (
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"tailscale.com/wgengine/netstack"
)

// start starts the node's tsnet server and bounds its TCP buffers
// (Config.TCPBuffer) before the node reaches the tailnet, so that every
// connection it makes or accepts has them: connections wait in tsnet until
// the node is running.
func (n *Node) start() error {
	if err := n.srv.Start(); err != nil {
		return fmt.Errorf("tailnet: start %s: %w", n.srv.Hostname, err)
	}
	if n.tcpBuffer <= 0 {
		return nil
	}
	ns, ok := n.srv.Sys().Netstack.GetOK()
	impl, isImpl := ns.(*netstack.Impl)
	if !ok || !isImpl {
		return errors.New("tailnet: the node has no user-space network stack to bound its TCP buffers in")
	}
	size := max(n.tcpBuffer, 4<<10)
	if err := impl.SetTransportProtocolOption(tcp.ProtocolNumber, &tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: size, Max: size}); err != nil {
		return fmt.Errorf("tailnet: TCP send buffer: %v", err)
	}
	if err := impl.SetTransportProtocolOption(tcp.ProtocolNumber, &tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: size, Max: size}); err != nil {
		return fmt.Errorf("tailnet: TCP receive buffer: %v", err)
	}
	return nil
}
