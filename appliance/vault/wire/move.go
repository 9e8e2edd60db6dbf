package wire

import (
	"encoding/json"
	"regexp"
	"time"
)

//	POST /v1/move                        move a namespace to the caller's new tailnet identity (body: MoveRequest)

// MovePurpose is what a box's signing key signs a move statement for.
const MovePurpose = "namespace-move"

// MoveWindow is how far a move's signed time may be from the vault's
// clock.
const MoveWindow = time.Hour

// MoveStatement asks the vault to let the tailnet identity whose namespace
// is To write the namespace From from now on: a replacement box continuing
// the repository of the box it replaces. It is signed with the key From's
// backups are signed with.
type MoveStatement struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	Time time.Time `json:"time"`
}

// MoveRequest is a signed MoveStatement. Statement is kept as sent: the
// signature covers exactly these bytes.
type MoveRequest struct {
	Statement json.RawMessage `json:"statement"`
	Signature []byte          `json:"signature"`
}

// MoveAnswer is the vault's answer to a move.
type MoveAnswer struct {
	Namespace string `json:"namespace"`
	// Already is true when the caller had already moved into it.
	Already bool `json:"already,omitempty"`
}

// Namespace is what a namespace is named: a tailnet node ID, each other
// character made an underscore.
var Namespace = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
