package main

import (
	"context"
	"time"

	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// boxHosts returns what lists the names and addresses the box's pages
// answer to: its host name and NAME.local, the addresses of its network
// interfaces, and with a tailnet node the node's names and addresses.
func boxHosts(node *tailnet.Node) func() []string {
	return func() []string {
		out := web.MachineHosts()
		if node != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			names, _ := node.Names(ctx) // before the node is up, its hostname only
			out = append(out, names...)
		}
		return out
	}
}
