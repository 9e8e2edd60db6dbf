package web

import (
	"net"
	"slices"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// Caller is who made a request.
type Caller struct {
	// Via is "lan" or "tailnet".
	Via string `json:"via"`
	// Addr is the caller's address as the connection shows it.
	Addr string `json:"addr"`
	// Node, Login and Tags are the tailnet identity (Login is empty for
	// tagged nodes); empty on the LAN.
	Node  string   `json:"node,omitempty"`
	Login string   `json:"login,omitempty"`
	Tags  []string `json:"tags,omitempty"`
}

// String is the caller in short, as logs show it: "lan:192.168.1.20" or
// "tailnet:laptop.clinic.ts.net".
func (c Caller) String() string {
	if c.Via == "lan" {
		return "lan:" + hostOnly(c.Addr)
	}
	name := c.Node
	if name == "" {
		name = hostOnly(c.Addr)
	}
	if c.Login != "" {
		name += " (" + c.Login + ")"
	}
	return "tailnet:" + name
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Roles a caller can have.
const (
	RoleStaff   = "staff"   // logged in on the LAN with the box password
	RoleSupport = "support" // remote support: reads always, acts with consent
	RoleAdmin   = "admin"   // the practice's IT person: reads and acts
)

// Roles gives tailnet callers their roles by tag ("tag:support") or login
// ("it@practice.example"). A caller in neither list has no role and is
// refused.
type Roles struct {
	Admin   []string `json:"admin,omitempty"`
	Support []string `json:"support,omitempty"`
}

// For returns c's role: admin before support, "" for none.
func (r Roles) For(c Caller) string {
	match := func(list []string) bool {
		return slices.ContainsFunc(list, func(s string) bool {
			return (c.Login != "" && strings.EqualFold(s, c.Login)) || slices.Contains(c.Tags, s)
		})
	}
	switch {
	case match(r.Admin):
		return RoleAdmin
	case match(r.Support):
		return RoleSupport
	}
	return ""
}

// Reasons shown when an action is refused.
const (
	whyNoConsent = "the front desk has not opened a support window; ask them to press and hold the button for 3 seconds, or to open one on the box's page"
	whyAtTheBox  = "this is done at the practice: on the box's page on the practice network, or with the button"
	whyNoRole    = "this tailnet device has no role on the box; ask the practice to add its tag or login to the box's settings"
	whyNoSim     = "this box has no simulated drives"
	whyUnknown   = "the box does not know this action"
)

// remoteActions are what a tailnet caller may ask for; the rest need hands
// at the box.
var remoteActions = []string{ActBackup, ActDrill, ActAcknowledge, ActBundle}

var lanActions = []string{ActBackup, ActDrill, ActAcknowledge, ActEject, ActConsent, ActEnroll, ActBundle, ActPlug, ActUnplug}

// mayAct decides whether a caller with role may perform action now, and
// says why in plain words either way.
func mayAct(role, action string, st status.Status, sim bool, now time.Time) (bool, string) {
	if !slices.Contains(lanActions, action) {
		return false, whyUnknown
	}
	if (action == ActPlug || action == ActUnplug) && !sim {
		return false, whyNoSim
	}
	switch role {
	case RoleStaff:
		return true, "logged in on the practice network"
	case RoleAdmin, RoleSupport:
		if !slices.Contains(remoteActions, action) {
			return false, whyAtTheBox
		}
		if role == RoleAdmin {
			return true, "the practice's administrator"
		}
		if until := st.Support.ConsentUntil; until.After(now) {
			return true, "support window open until " + until.Format(time.RFC3339)
		}
		return false, whyNoConsent
	}
	return false, whyNoRole
}
