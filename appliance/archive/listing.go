package archive

import (
	"path"
	"strings"
	"time"
)

// A repository read from the offsite vault is first known by its file
// listing: a restore fetches the small files (metadata, WAL state), chooses
// its backup from them and the listing, and then fetches only that backup's
// chain and the WAL after it, instead of every backup the vault keeps.

// Listed is a repository file known by its path (relative, with forward
// slashes) and size only.
type Listed struct {
	Path string
	Size int64
}

// UseListing makes the WAL catalog (Timelines, Summarize) come from a
// listing of the repository's files instead of its wal directory, for a
// local copy that holds the metadata but not the segments yet. The listing
// carries no times: a run of WAL is taken as stored now, unless the WAL
// state says when.
func (r *Repo) UseListing(files []Listed) { r.listing = files }

// Bulk reports whether a repository file is one a restore fetches only when
// it needs it: a backup's archive or block map, or a WAL segment.
func Bulk(p string) bool {
	dir, name := path.Split(p)
	switch {
	case strings.HasPrefix(dir, "backups/"):
		return strings.Contains(name, ".tar") || strings.HasPrefix(name, blockMapName)
	case strings.HasPrefix(dir, "wal/"):
		return strings.HasSuffix(name, segSuffix) || strings.HasSuffix(name, partialSuffix)
	}
	return false
}

// NeededBy returns whether a bulk file is needed to restore the last
// backup of chain (as Chain returns it): the archives of every backup in
// the chain and the WAL from the segment where the last one starts. Other
// files are reported as needed.
func (r *Repo) NeededBy(chain []*Backup) func(p string) bool {
	ids := map[string]bool{}
	for _, b := range chain {
		ids[b.ID] = true
	}
	first := uint64(chain[len(chain)-1].StartLSN) / r.Info.SegmentSize
	return func(p string) bool {
		if !Bulk(p) {
			return true
		}
		parts := strings.Split(p, "/")
		if parts[0] == "backups" {
			return len(parts) == 3 && ids[parts[1]]
		}
		base, _, _ := strings.Cut(parts[len(parts)-1], ".")
		_, segNo, ok := parseSegName(base, r.Info.SegmentSize)
		return ok && segNo >= first
	}
}

// listedWAL is scanWAL for a repository known by its listing.
func (r *Repo) listedWAL() map[uint32]*Timeline {
	out := map[uint32]*Timeline{}
	now := time.Now()
	for _, f := range r.listing {
		parts := strings.Split(f.Path, "/")
		if len(parts) != 3 || parts[0] != "wal" {
			continue
		}
		tli, ok := parseTLIDir(parts[1])
		if !ok {
			continue
		}
		if out[tli] == nil {
			out[tli] = &Timeline{TLI: tli}
		}
		r.addWALName(out[tli], parts[2], f.Size, now)
	}
	return out
}
