package fault

// notes say how each fault was produced and what the suite does not cover;
// they end RELIABILITY.md.
var notes = []string{
	"SIGKILL: `clinicctl stream`, `backup` and `verify` run as child processes and are killed at a random delay (CLINICBOX_TORTURE_ROUNDS rounds; the last round always kills the streamer). " +
		"A ledger workload commits numbered rows and reads `pg_current_wal_insert_lsn()` after each commit; after the last kill, a restore drill to latest must hold every row committed at or before " +
		"the larger of the repository's recorded flush position and the slot's `restart_lsn` (what the streamer told the server was flushed). A clinic workload runs beside it.",
	"Power cut: ext4 on a loop device is shut down with `FS_IOC_SHUTDOWN` and `FS_GOING_DOWN_NOLOGFLUSH` right after every process is killed, the way xfstests simulates power failure: " +
		"whatever the filesystem had not yet written to the device is never written, and the journal is replayed at the next mount. " +
		"The drive's own volatile write cache is not modelled (the loop device's backing file survives in the host's page cache), no device-mapper (dm-flakey, dm-log-writes) is available on these machines, and `drop_caches` was not used (it is not power loss).",
	"Drive pulled: the same shutdown makes every further read and write fail with EIO while the stream writes, then the filesystem is unmounted, the loop device detached and the image attached again as a new device. " +
		"A loop device cannot vanish under a mounted filesystem (the kernel defers the detach until unmount), so this is not an electrical hot-unplug; real USB pulls can only be exercised in the qemu guest.",
	"Disk full: a 64 MB ext4 image filled to about 600 KB free (root may use the reserved blocks too). Read-only: the image is mounted with `errors=remount-ro` and an ext4 error is triggered through `/sys/fs/ext4/DEV/trigger_fs_error`, as a failing drive turns read-only.",
	"Not covered here: SIGKILL of the appliance service itself during retention and offsite upload; the offsite link down for a day and the slot retention alert; malformed or replayed uploads to the vault and peers without the right tailnet tags (see appliance/vault and appliance/web tests); " +
		"tar entries escaping the data directory are refused by appliance/archive's TestUntarRefusesHostileEntries, which this suite does not re-run.",
}
