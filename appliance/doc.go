// Package appliance is the box's daily life: drives come and go, the
// rotation decides, backups are taken, verified and streamed, the panel and
// the alerts say what to do, and everything is recorded.
//
// Run is the clinicbox service; the drivers it uses are passed in as small
// interfaces, so tests and the demo run the same code with simulated parts.
//
// # The map
//
// The tree reads as the data path, from the clinic's database to a restore:
//
//	server   drivers/postgres       the replication-protocol client: base backups, WAL, slots
//	box      appliance              this package: events in, decisions, actions out
//	         appliance/backup       a base backup and the WAL stream into a repository
//	         rotation               which drive belongs in the box (pure, time passed in)
//	         rotation/chain         the signed hash chain of the custody and audit logs
//	drive    appliance/archive      the repository format on a drive or in the vault
//	         drivers/usb, drivers/smart   the drive itself: hot-plug, mount, eject, health
//	vault    appliance/offsite      the box's side: WAL and backups shipped over the tailnet
//	         appliance/vault/wire   the protocol both sides speak
//	         appliance/vault        the vault's side (cmd/clinicvault), never linked by the box
//	restore  appliance/restore      a repository back into a running PostgreSQL, and drills
//
// Around the path: appliance/status is the one status document that
// appliance/web (the pages and API), appliance/alert (e-mail, webhooks) and
// the front panel (drivers/panel, through appliance/hardware) read; appliance/audit
// records who asked the box for what; appliance/signer holds the box's
// signing key; appliance/maint schedules the database's upkeep;
// appliance/fault tries the failures. drivers/postgres/pgcluster starts
// throwaway clusters for the demo and the benchmark, pgtest for tests.
//
// # Dependency rules
//
// Drivers import nothing under appliance; rotation imports no driver,
// database or network package; the repository format and the status
// document import no driver; the box (cmd/clinicbox) links no vault server
// and no test code; no shipped program links testing. cmd/deps_test.go
// checks these rules.
package appliance
