package fault

// attacks are the hostile inputs the packages' own tests try; they follow
// the fault suite's table in RELIABILITY.md.
var attacks = []Attack{
	// Backups only the box can have written.
	{"a complete backup written by someone holding the drive (encrypted to the real recipients, signed by another key), marked verified, newest", "verify names it (not written by the trusted box); restore refuses it before unpacking a byte", "appliance/fault TestSIGKILL/forged-backup, archive TestForgedBackupRefused"},
	{"a backup's content changed and re-encrypted, cut short, its backup.sig removed, or its start position edited in backup.json", "refused as forged; no byte past the last good 1 MiB chunk handed on; the same content re-encrypted is still accepted", "archive TestForgedBackupRefused"},
	{"WAL forged: a segment or a record signed by another key, a genuine segment copied to another segment number, an unsigned segment or record in a signed repository, a forged history file", "refused as forged by verify, restore and wal-fetch; read without the box's key, refused with what to pass", "archive TestForgedWALRefused, TestHistorySigned"},
	{"a drill report edited, or re-signed by another key that names itself", "refused: reports are checked against the trusted key, not the one they carry", "restore TestDrill"},
	{"a format 1 (unsigned) repository, and one a signing box then wrote to", "readable, with an UNSIGNED note; after the upgrade an unsigned file past where signing began is refused", "archive TestFormat1ReadsAndUpgrades"},
	{"a FIFO, a link to a device or to a file of the machine, a directory or a huge file as a repository file", "refused at once, never waited on or followed", "archive TestHostileRepositoryFiles"},
	{"a tablespace path in hostile metadata (backup.json, the tar's pg_tblspc links)", "never a destination: tablespaces restore into the mapped directory or PGDATA/pg_tblspc_data/OID", "restore TestRestoreTablespaces"},
	{"a chain of symlinks in a base backup (sub -> ., then pg_wal -> sub/../x), a file written through a link, a symlink planted in the target", "refused at the first such entry; every write resolved beneath the target with os.Root", "archive TestUntarRefusesHostileEntries, TestUntarPlantedSymlink"},
	{"CREATE TABLESPACE in the WAL to be replayed, pointing outside the target (the source server's live tablespace)", "refused before anything is written, naming the location and --tablespace; mapped, the files land in the mapped directory and the original is unchanged", "restore TestRestoreTablespaces"},
	{"CREATE TABLESPACE in WAL that reaches the repository after the restore read it (a standby following the repository, a restore from a drive still streaming), pointing at the source server's live tablespace", "the segment is refused as it is served, naming the location and --tablespace; the standby never links to or writes into the live tablespace", "restore TestStandbyRefusesLaterTablespace"},
	{"a drill of a backup with tablespaces whose original location is in use", "passes, on PostgreSQL 15 and 17; every tablespace restored inside the drill's scratch directory and removed with it", "restore TestDrillTablespacesByVersion, clinicctl TestTablespaceRestoreAndDrillReport"},
	{"a repository from a PostgreSQL major version this machine lacks, or --pg-bin pointing at another major", "refused before anything is written, naming the version and how to install it; never run with another major (the server also checks PG_VERSION)", "restore TestDrillTablespacesByVersion, TestStartServerRefusesOtherMajor, clinicctl TestDrillByServerVersion"},
	// The vault: one box, one namespace.
	{"names with %2F, .., NUL, a backslash, a leading dot or over 128 bytes in a backup ID, file, timeline, repository path or ?box= (one box appended to another's committed backup)", "400 bad_name before any file is touched; each namespace is an os.Root", "vault TestNamesCannotLeaveTheNamespace"},
	{"a forged backup.json (start past the stored WAL, unknown timeline, end past the WAL, end before start) that made retention delete all of a box's WAL", "unconfirmed in the vault's own arrival record; retention deletes no WAL and no older backup for it", "vault TestForgedBackupDeletesNoWAL"},
	{"a 64 MiB upload chunk (a 512 MiB PUT allocated 1.2 GiB)", "streamed to disk: 0.9 MiB allocated", "vault TestUploadStreamsToDisk"},
	{"WAL segment sizes of 512 KiB, 3 MiB, 2 GiB; an upload abandoned half way; a namespace at its quota", "422; removed after 48 h without data; 507 with what to ask the vault's operator, and the box shows offsite vault full", "vault TestSegmentSizeRange, TestAbandonedUploadIsRemoved, TestQuota, offsite TestOffsiteVaultFull"},
	// The USB port.
	{"a drive's identity file that is a FIFO (hung the main loop), a link to a device or to a file of the box, a directory, a huge file", "refused at once with the reason on the panel; read off the main loop with a timeout; drives mounted nosymfollow", "appliance TestReadIdentityFromHostileDrive, usb TestKernelMountDoesNotFollowSymlinks"},
	{"a 2 MiB, 10 KiB or line-break drive ID, or a strange serial or filesystem UUID (a 2 MiB ID in the custody log stopped the service for good)", "refused where it is read; a foreign drive, nothing kept from it", "appliance TestReadIdentityRefusesStrangeHardwareIDs, rotation TestDecideRefusesStrangeIdentities"},
	{"an unknown ext4 drive with a dirty journal, mounted read-only", "block device set read-only and ext4 mounted noload: the image's SHA-256 unchanged", "usb TestKernelReadOnlyLeavesDirtyJournal"},
	{"an enrolled drive's identity file copied onto another stick", "signature over ID, filesystem UUID and serial fails: foreign drive, nothing written", "appliance TestDriveSignature"},
	// The database connection.
	{"a host posing as the database server refuses TLS (or offers its own certificate) and asks for the password in clear or as MD5, or offers SCRAM without channel binding; box, clinicctl backup and stream", "refused before any password or hash is written, saying how to turn TLS on at the server and give the box its fingerprint", "postgres TestImpostorGetsNoPassword, clinicctl TestImpostorGetsNoPasswordFromClinicctl"},
	{"a server message claiming 64 MiB", "refused before allocating (bound 8 MiB; WAL messages are at most 512 KB)", "postgres TestImpostorGetsNoPassword"},
	// Custody and audit logs an auditor can trust.
	{"entries cut from the end of the custody log", "reported against the signed head every eject leaves on the drive: truncated after entry N, entries N+1 to M missing", "rotation TestCustodySigned, appliance TestEjectThatRemovesTheDrive, clinicctl TestCustodyVerify"},
	{"history rewritten by someone holding /perm (the HMAC key derived from box.key)", "signed entries need box.sign: another key, a forged signature or a rewrite against an anchor are each reported", "rotation TestCustodySigned, TestCustodyLegacyTransition"},
	{"a torn last line (power cut during an append), a 2 MiB line, a damaged rotation.json or box.json", "skipped or set aside and reported; the box starts", "appliance TestStartsWithDamagedFiles, audit TestOpenReportsDamage"},
	// The box's pages.
	{"plain HTTP to the LAN pages (pages, setup, sign-in with a password, API, bundle, metrics, an action with a valid cookie and CSRF token)", "301 to the same address over HTTPS and nothing else: no page, no answer, no cookie, no action", "web TestLANPlainHTTPOnlyRedirects"},
	{"another site framing the pages (clickjacking); content sniffing", "every answer carries frame-ancestors 'none', X-Frame-Options DENY and nosniff; Chromium logged no policy violation on any page", "web TestSecurityHeaders, browser tests"},
	{"a session used past 12 hours after sign-in, or after the password changed", "refused: sign in again", "web TestSessionLifetime"},
	{"secrets in the diagnostic bundle (database password and sslpassword, SMTP password, webhook URL path and token, vault and control URL keys)", "each blanked; hosts and secret-file paths kept for support", "appliance TestBundleSettingsHoldNoSecrets"},
	{"formula injection through the custody CSV (=, +, -, @, tab, carriage return at the start of a cell)", "the cell starts with a single quote, so a spreadsheet shows text", "rotation TestCustodyCSVFormulas"},
	{"an open tab polling the status every 2 s for a day (43,000 audit records that would push out the ones that matter)", "one record per caller and read each ten minutes, saying how many were counted; actions, exports and refusals recorded each", "web TestPolledReadsCounted"},
}
