// Package atomicfile writes files so that a crash or a kill never leaves a
// partial one: the contents go to a temporary file in the same folder,
// which is synced, given its final mode and renamed over the path. A
// reader of the path sees either its old contents or the complete new
// ones.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write calls write with a temporary file beside path and, when write
// succeeds, syncs the file, sets perm and renames it to path, then syncs
// the folder (best effort: not every file system allows it) so that the
// rename survives a power cut. On any error the temporary file is removed
// and path is left as it was. The temporary name starts with a dot and
// path's base name, followed by ".tmp".
func Write(path string, perm os.FileMode, write func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Chmod(perm) // CreateTemp's 0600 is for the half-written file only
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
