//go:build !linux

package archive

import "os"

// startWriteback does nothing where sync_file_range does not exist: the
// file is written at its fsync.
func startWriteback(*os.File, int64, int64) {}

// settleWriteback and dropCache do nothing either: the page cache keeps
// what it keeps.
func settleWriteback(*os.File, int64, int64) {}

func dropCache(*os.File) {}
