//go:build gokrazydeps

// This file is never compiled. Its imports make `go mod tidy` keep the
// modules that monogok puts into the image but that no compiled package
// imports: the kernels, the Pi firmware and EEPROM, and gokrazy's init and
// base services (see config.json). The tag is not "ignore" because
// `go mod tidy` skips files tagged "ignore".

package main

import (
	_ "github.com/gokrazy/firmware"
	_ "github.com/gokrazy/gokrazy"
	_ "github.com/gokrazy/gokrazy/cmd/dhcp"
	_ "github.com/gokrazy/gokrazy/cmd/ntp"
	_ "github.com/gokrazy/gokrazy/cmd/randomd"
	_ "github.com/gokrazy/kernel.amd64"
	_ "github.com/gokrazy/kernel.rpi"
	_ "github.com/gokrazy/rpi-eeprom"
)
