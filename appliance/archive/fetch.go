package archive

import "io"

// FetchFrom makes r read the stored files of its backups (archives,
// deltas, block maps) through fetch, given each file's path in the
// repository ("backups/ID/NAME"), instead of from its directory, which then
// needs only each backup's record and signature. A box that lost its block
// map maps the vault's backup this way as it streams down, without room
// for a copy on /perm; every file is still checked against the content
// hash the box signed as it is read.
func (r *Repo) FetchFrom(fetch func(rel string) (io.ReadCloser, error)) { r.fetch = fetch }

// openStored opens the stored (encrypted) form of file f of backup b.
func (r *Repo) openStored(b *Backup, f StoredFile) (io.ReadCloser, error) {
	if r.fetch != nil {
		return r.fetch("backups/" + b.ID + "/" + f.Name)
	}
	return openRegular(r.backupPath(b, f))
}

// StoredBytes is the size of the backup's stored files: what a repository
// or the vault holds of it, and what an upload sends.
func (b *Backup) StoredBytes() int64 {
	var n int64
	for _, f := range b.Files {
		n += f.Size
	}
	return n
}
