// Command clinicbox is the appliance service on the box. For now it only
// proves that the image boots and supervises it: it accepts its flags, says
// it is starting, and waits for SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	flag.String("settings", "/perm/clinicbox/settings.json", "settings file (JSON)")
	flag.String("state", "/perm/clinicbox", "directory for the appliance's state")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("clinicbox: starting")
	<-ctx.Done()
}
